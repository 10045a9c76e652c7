//! Every real recording in `tests/fixtures/audio` (made by `scripts/make-audio-fixtures.sh` and
//! `scripts/record-browser-audio.sh`) through the normaliser, judged by what would reach Azure:
//! a WAV header that is exactly 16 kHz mono 16-bit PCM, or an Ogg/Opus stream with valid CRCs,
//! headers alone on their pages, granules that never go back and the source's very packets; a
//! duration within the fixture's tolerance; and decoded speech whose loudness follows the
//! source's, so a wrong rate, speed or channel layout cannot pass.

#[path = "support/audio_checks.rs"]
mod checks;

use std::time::Duration;

use backend_ai::audio::normalise::{self, OGG_OPUS_CONTENT_TYPE, WAV_CONTENT_TYPE};
use backend_ai::audio::{Action, AudioError, Destination, Policy, Purpose, SendFormat};
use bytes::Bytes;
use checks::{Fixture, envelope_correlation, fixtures, ogg_packets, read_fixture, reference_envelope};

/// What the normaliser must do with each fixture, by what it is.
fn expected_action(fixture: &Fixture, send: SendFormat) -> Action {
    let mono_opus = fixture.codec == "opus" && fixture.channels == 1;
    match fixture.file.as_str() {
        "speech-16k.wav" => Action::Passthrough,
        // The samples are already right; only the size fields are rewritten.
        file if file.starts_with("wav-16k-mono-s16-streaming") => Action::Remux,
        _ if mono_opus && send == SendFormat::Auto => Action::Remux,
        _ => Action::Transcode,
    }
}

fn policy(send: SendFormat) -> Policy {
    Policy { max_duration: Duration::from_secs(600), send }
}

#[test]
fn every_recording_a_device_makes_becomes_what_azure_documents() {
    let reference = reference_envelope();
    let mut checked = 0;
    for fixture in fixtures() {
        for send in [SendFormat::Auto, SendFormat::Wav] {
            let bytes = read_fixture(&fixture.file);
            let normalised = normalise::normalise(bytes.clone(), Purpose::Transcription, policy(send))
                .unwrap_or_else(|rejected| panic!("{} ({send:?}): refused: {}", fixture.file, rejected.error));
            let name = format!("{} ({send:?})", fixture.file);
            assert_eq!(normalised.action, expected_action(&fixture, send), "{name}");

            let measured_ms = normalised.duration.as_secs_f64() * 1000.0;
            assert!(
                (measured_ms - fixture.duration_ms).abs() <= fixture.tolerance_ms + 0.5,
                "{name}: {measured_ms:.1} ms, expected {} ms within {} ms",
                fixture.duration_ms,
                fixture.tolerance_ms
            );

            let payload = &normalised.payload;
            assert_eq!(payload.destination, Destination::ShortAudio, "{name}");
            let samples = if normalised.action == Action::Remux && fixture.codec == "opus" {
                assert_eq!(payload.content_type, OGG_OPUS_CONTENT_TYPE, "{name}");
                let sent = ogg_packets(&payload.bytes).unwrap_or_else(|why| panic!("{name}: {why}"));
                assert_eq!(sent.packets, checks::source_packets(&bytes), "{name}: the packets were changed");
                let played = sent.final_granule - u64::from(sent.pre_skip);
                assert_eq!(Duration::from_secs_f64(played as f64 / 48_000.0), normalised.duration, "{name}");
                checks::decode_opus(&sent)
            } else {
                assert_eq!(payload.content_type, WAV_CONTENT_TYPE, "{name}");
                let samples =
                    checks::wav_16k_mono_samples(&payload.bytes).unwrap_or_else(|why| panic!("{name}: {why}"));
                let expected = (normalised.duration.as_secs_f64() * 16_000.0).round() as i64;
                assert!(
                    (samples.len() as i64 - expected).abs() <= 1,
                    "{name}: {} samples for {measured_ms} ms",
                    samples.len()
                );
                samples
            };
            if let Some(span) = fixture.reference_span() {
                let correlation = envelope_correlation(&reference, span, &samples);
                assert!(correlation >= 0.9, "{name}: loudness follows the source with r = {correlation:.3}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 60, "only {checked} fixture runs");
}

#[test]
fn a_recording_cut_off_mid_cluster_is_kept_up_to_the_cut() {
    let bytes = read_fixture("chrome-webm-opus-cut.webm");
    let normalised = normalise::normalise(bytes, Purpose::Transcription, Policy::default()).expect("kept");
    assert_eq!(normalised.action, Action::Remux);
    assert!(normalised.duration > Duration::from_secs(2), "{:?}", normalised.duration);
}

#[test]
fn more_than_half_a_minute_is_kept_whole_for_assessment_up_to_audio_max_seconds() {
    // A long reading is cut into pieces later; here it is only measured and kept.
    let normalised =
        normalise::normalise(read_fixture("bench-30s-webm-opus.webm"), Purpose::Assessment, Policy::default())
            .expect("30.48 s");
    assert!(normalised.duration > Duration::from_secs(30), "{:?}", normalised.duration);
    let short = Policy { max_duration: Duration::from_secs(30), ..Policy::default() };
    let error = normalise::normalise(read_fixture("bench-30s-webm-opus.webm"), Purpose::Assessment, short)
        .expect_err("over AUDIO_MAX_SECONDS");
    assert!(
        matches!(error.error, AudioError::TooLong { limit: 30, .. } | AudioError::TooLongFor { limit: 30, .. }),
        "{:?}",
        error.error
    );
    // A whole-minute recording is fine to transcribe, through short audio.
    let normalised = normalise::normalise(read_fixture("bench-30s-mp3.mp3"), Purpose::Transcription, Policy::default())
        .expect("30 s");
    assert_eq!(normalised.payload.destination, Destination::ShortAudio);
}

#[test]
fn a_recording_over_audio_max_seconds_is_refused() {
    let short = Policy { max_duration: Duration::from_secs(2), ..Policy::default() };
    for file in ["speech-16k.wav", "webm-opus-mono.webm", "m4a-aac-moov-end.m4a"] {
        let error = normalise::normalise(read_fixture(file), Purpose::Transcription, short).expect_err(file);
        assert!(matches!(error.error, AudioError::TooLong { limit: 2, .. }), "{file}: {:?}", error.error);
    }
}

#[test]
fn over_a_minute_goes_to_fast_transcription_as_it_came_or_as_ogg() {
    // 91 s of Chrome's Opus packets, three times over, re-packaged into one Ogg stream.
    let long = checks::repeat_as_ogg(&read_fixture("bench-30s-webm-opus.webm"), 3);
    let normalised = normalise::normalise(long, Purpose::Transcription, Policy::default()).expect("91 s");
    assert_eq!(normalised.payload.destination, Destination::FastTranscription);
    assert_eq!(normalised.payload.content_type, OGG_OPUS_CONTENT_TYPE);
    assert!((normalised.duration.as_secs_f64() - 91.44).abs() < 0.05, "{:?}", normalised.duration);

    // A long WAV at 44.1 kHz stereo goes as it came: fast transcription reads PCM WAV...
    let wav = checks::long_wav(44_100, 2, 70);
    let normalised = normalise::normalise(wav.clone(), Purpose::Transcription, Policy::default()).expect("70 s");
    assert_eq!(normalised.payload.destination, Destination::FastTranscription);
    assert_eq!((normalised.payload.content_type, &normalised.payload.bytes), ("audio/wav", &wav));

    // ...but not one whose sizes a streaming writer left unknown: that one is converted.
    let mut streaming = wav.to_vec();
    streaming[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
    let wav = Bytes::from(streaming);
    let normalised = normalise::normalise(wav, Purpose::Transcription, Policy::default()).expect("70 s");
    assert_eq!(normalised.payload.destination, Destination::FastTranscription);
    assert_eq!(normalised.payload.content_type, WAV_CONTENT_TYPE);
    assert_eq!(checks::wav_16k_mono_samples(&normalised.payload.bytes).map(|s| s.len()), Ok(70 * 16_000));

    // A long native WAV goes unchanged.
    let wav = checks::long_wav(16_000, 1, 65);
    let normalised = normalise::normalise(wav.clone(), Purpose::Transcription, Policy::default()).expect("65 s");
    assert_eq!(
        (normalised.action, normalised.payload.destination),
        (Action::Passthrough, Destination::FastTranscription)
    );
    assert_eq!(normalised.payload.bytes, wav);
}

#[test]
fn claims_no_device_makes_are_refused_before_decoding() {
    let mut channels = checks::long_wav(16_000, 1, 1).to_vec();
    channels[22..24].copy_from_slice(&5000u16.to_le_bytes());
    let mut rate = checks::long_wav(16_000, 1, 1).to_vec();
    rate[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut hours = checks::long_wav(44_100, 1, 1).to_vec();
    // A data size claiming 13 hours on a file holding one second: the samples decide.
    hours[40..44].copy_from_slice(&0x7FFF_FFF0u32.to_le_bytes());
    for (name, bytes, unsupported) in
        [("5000 channels", channels, true), ("4 GHz", rate, true), ("13 hours", hours, false)]
    {
        let result = normalise::normalise(Bytes::from(bytes), Purpose::Transcription, Policy::default());
        match result {
            Err(rejected) if unsupported => {
                assert!(matches!(rejected.error, AudioError::Unsupported { .. }), "{name}: {:?}", rejected.error)
            }
            Ok(normalised) if !unsupported => assert!(normalised.duration <= Duration::from_secs(2), "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn junk_behind_a_valid_magic_number_is_damage_never_a_panic() {
    for magic in [
        &b"RIFF\x10\0\0\0WAVEfmt "[..],
        b"OggS\0\x02\0\0\0\0\0\0\0\0",
        b"\x1A\x45\xDF\xA3\x9F\x42\x86\x81\x01\x42\x82\x84webm",
        b"\0\0\0\x18ftypM4A \0\0\0\0isom",
        b"fLaC\0\0\0\x22",
        b"ID3\x03\0\0\0\0\0\x10",
    ] {
        let mut bytes = magic.to_vec();
        bytes.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        let error = normalise::normalise(Bytes::from(bytes), Purpose::Transcription, Policy::default())
            .expect_err("junk is not audio");
        assert!(
            matches!(error.error, AudioError::Damaged { .. } | AudioError::Unsupported { .. }),
            "{magic:?}: {:?}",
            error.error
        );
    }
}

#[test]
fn a_float_wav_holding_nan_and_infinity_is_decoded_as_silence_there() {
    // Found by the fuzz target: the resampler's FFT panicked on non-finite samples.
    let samples = [0.25f32, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.25, 1e30];
    let mut wav = b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x03\0\x01\0\x80\xbb\0\0\0\xee\x02\0\x04\0\x20\0data".to_vec();
    let data: Vec<u8> = (0..48_000).flat_map(|i| samples[i % samples.len()].to_le_bytes()).collect();
    wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
    wav.extend_from_slice(&data);
    let size = (wav.len() - 8) as u32;
    wav[4..8].copy_from_slice(&size.to_le_bytes());
    let normalised =
        normalise::normalise(Bytes::from(wav), Purpose::Transcription, Policy::default()).expect("decoded");
    assert_eq!(normalised.action, Action::Transcode);
    assert_eq!(checks::wav_16k_mono_samples(&normalised.payload.bytes).map(|s| s.len()), Ok(16_000));
}

#[test]
fn recordings_cut_or_corrupted_anywhere_never_panic() {
    // Deterministic: cuts at spread-out offsets and flipped bytes, for one file per container.
    for file in [
        "chrome-webm-opus-timeslice.webm",
        "chrome-mp4-opus.mp4",
        "m4a-aac-moov-end.m4a",
        "mp3-id3v2.mp3",
        "ogg-vorbis-mono.ogg",
        "flac-44k1-mono.flac",
        "adts-aac.aac",
        "wav-22k05-mono-s24.wav",
    ] {
        let bytes = read_fixture(file);
        let len = bytes.len();
        for step in 1..24 {
            let cut = bytes.slice(..len * step / 24);
            let _ = normalise::normalise(cut, Purpose::Transcription, Policy::default());
            let mut flipped = bytes.to_vec();
            for index in (step * 7919..len).step_by(997 + step) {
                flipped[index] ^= 0x5A;
            }
            let _ = normalise::normalise(Bytes::from(flipped), Purpose::Transcription, Policy::default());
        }
    }
}

#[test]
fn a_stereo_opus_packet_that_trips_the_decoder_is_damage_not_a_panic() {
    // A WebM found by the fuzz target: a stereo Opus stream whose packet made opus-decoder 0.1.1
    // panic (a shift past 8 bits, caught by debug builds' overflow checks).
    let bytes = Bytes::from_static(include_bytes!("fixtures/audio/fuzz-opus-decoder-panic.webm"));
    match normalise::normalise(bytes, Purpose::Transcription, Policy::default()) {
        Ok(normalised) => assert_eq!(normalised.action, Action::Transcode),
        Err(rejected) => assert!(matches!(rejected.error, AudioError::Damaged { .. }), "{:?}", rejected.error),
    }
}

#[test]
fn float_samples_large_enough_to_overflow_the_resampler_are_clipped_not_a_panic() {
    // A WAV found by the fuzz target: 48 kHz float samples so large that the resampler's FFT
    // overflowed into infinities, and rubato 5.1 panicked on them.
    let bytes = Bytes::from_static(include_bytes!("fixtures/audio/fuzz-wav-float-overflow.wav"));
    match normalise::normalise(bytes, Purpose::Transcription, Policy::default()) {
        Ok(normalised) => assert_eq!(normalised.action, Action::Transcode),
        Err(rejected) => assert!(matches!(rejected.error, AudioError::Damaged { .. }), "{:?}", rejected.error),
    }
}
