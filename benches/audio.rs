//! Normalising 30 s recordings, on one core: re-packaging Chrome's WebM/Opus as Ogg/Opus, and
//! decoding and resampling an M4A (AAC-LC), an MP3 and a stereo 48 kHz Ogg/Opus (encoded at
//! start by libopus, 32 kbps) to 16 kHz mono 16-bit WAV.
//! `cargo bench --bench audio`; goals (issue: audio) are at least 1,000x real time for the
//! remux and 100x for decoding and resampling (stereo Opus included, issue 21). No timing is
//! asserted anywhere.

use std::hint::black_box;
use std::time::Duration;

use backend_ai::audio::normalise::{self, Action};
use backend_ai::audio::{Policy, Purpose};
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};

#[path = "../tests/support/opus_recording.rs"]
mod opus_recording;

fn fixture(name: &str) -> Bytes {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio").join(name);
    Bytes::from(std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display())))
}

fn normalise_30s(c: &mut Criterion) {
    let mut group = c.benchmark_group("normalise 30 s");
    group.measurement_time(Duration::from_secs(10));
    for (name, file, action) in [
        ("remux webm opus", "bench-30s-webm-opus.webm", Action::Remux),
        ("decode+resample m4a aac", "bench-30s-aac.m4a", Action::Transcode),
        ("decode+resample mp3", "bench-30s-mp3.mp3", Action::Transcode),
    ] {
        let bytes = fixture(file);
        let once = normalise::normalise(bytes.clone(), Purpose::Transcription, Policy::default()).expect(file);
        assert_eq!(once.action, action, "{file}");
        let seconds = once.duration.as_secs_f64();
        group.bench_function(format!("{name} ({seconds:.1} s of audio)"), |b| {
            b.iter(|| normalise::normalise(black_box(bytes.clone()), Purpose::Transcription, Policy::default()))
        });
    }
    group.finish();
}

/// Stereo 48 kHz Opus decoded to 16 kHz mono, timed by the CPU this thread uses rather than by
/// the wall clock, which on a shared machine says more about the neighbours than the decoder.
fn opus_stereo_cpu(c: &mut Criterion) {
    let mut group = c.benchmark_group("normalise 30 s, CPU time");
    group.measurement_time(Duration::from_secs(10)).sample_size(20);
    let bytes = Bytes::from(opus_recording::stereo_ogg_opus(30.0, 32));
    let once = normalise::normalise(bytes.clone(), Purpose::Transcription, Policy::default()).expect("stereo Opus");
    assert_eq!(once.action, Action::Transcode);
    let seconds = once.duration.as_secs_f64();
    group.bench_function(format!("decode ogg opus stereo 48 kHz ({seconds:.1} s of audio)"), |b| {
        b.iter_custom(|iterations| {
            let start = thread_cpu();
            for _ in 0..iterations {
                black_box(normalise::normalise(black_box(bytes.clone()), Purpose::Transcription, Policy::default()))
                    .ok();
            }
            thread_cpu() - start
        })
    });
    group.finish();
}

/// User and system CPU time of this thread, from `/proc/thread-self/stat` (fields 14 and 15, in
/// clock ticks of 10 ms: criterion's many iterations per sample make that precise enough).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("Linux's /proc");
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after_name.split_whitespace().skip(11).take(2).filter_map(|f| f.parse().ok()).collect();
    Duration::from_millis(fields.iter().sum::<u64>() * 10)
}

criterion_group!(benches, normalise_30s, opus_stereo_cpu);
criterion_main!(benches);
