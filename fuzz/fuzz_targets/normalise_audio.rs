//! `cargo +nightly fuzz run normalise_audio fuzz/corpus/normalise_audio tests/fixtures/audio -- -max_total_time=300 -timeout=5`
//! (the fixtures seed it with every container; `fuzz/corpus/normalise_audio` holds hostile
//! claims: an endless MP4 `trun`, Matroska blocks laced with nothing). Any bytes must give a
//! normalised recording or a refusal, never a panic, a hang or unbounded memory; what is
//! accepted is always something Azure documents, no longer than the limit. The packet
//! allowance is on (one packet per byte, empty runs refused, the deadline on every packet), so
//! `-timeout=5` flags any input whose work is not bounded by its bytes.
#![no_main]

use std::time::Duration;

use backend_ai::audio::normalise::{self, OGG_OPUS_CONTENT_TYPE, WAV_CONTENT_TYPE};
use backend_ai::audio::{Policy, Purpose, SendFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // libFuzzer's hook aborts at the panic itself, before any unwinding; the normaliser
        // catches the Opus decoder's known panic (a damaged recording, not a crash), so panics
        // must unwind to be caught. One that escapes still aborts and is reported.
        let _ = std::panic::take_hook();
    },
    |data: &[u8]| {
    let policy = Policy { max_duration: Duration::from_secs(120), send: SendFormat::Auto };
    let purpose = if data.first().is_some_and(|byte| byte & 1 == 1) { Purpose::Assessment } else { Purpose::Transcription };
    if let Ok(normalised) = normalise::normalise(bytes::Bytes::copy_from_slice(data), purpose, policy) {
        assert!(normalised.duration <= policy.max_duration);
        let content_type = normalised.payload.content_type;
        if normalised.payload.destination == backend_ai::audio::Destination::ShortAudio {
            assert!(content_type == WAV_CONTENT_TYPE || content_type == OGG_OPUS_CONTENT_TYPE, "{content_type}");
        }
    }
    }
);
