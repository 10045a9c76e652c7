//! Normalising 30 s recordings, on one core: re-packaging Chrome's WebM/Opus as Ogg/Opus, and
//! decoding and resampling an M4A (AAC-LC) and an MP3 to 16 kHz mono 16-bit WAV.
//! `cargo bench --bench audio`; goals (issue: audio) are at least 1,000x real time for the
//! remux and 100x for decoding and resampling. No timing is asserted anywhere.

use std::hint::black_box;
use std::time::Duration;

use backend_ai::audio::normalise::{self, Action};
use backend_ai::audio::{Policy, Purpose};
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};

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

criterion_group!(benches, normalise_30s);
criterion_main!(benches);
