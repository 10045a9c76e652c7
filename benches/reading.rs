//! Cutting a 10-minute reading at its pauses, on one core: the step a long pronunciation
//! assessment takes before any piece goes to Azure (`domain::reading::pauses::cut`). The reading
//! is espeak-ng's "The North Wind and the Sun" (tests/fixtures/audio/reading), decoded to 16 kHz
//! and repeated with 0.8 s pauses between sentences up to 600 s.
//! `cargo bench --bench reading`; goal (issue 23): well over 1,000x real time on one core. Timed
//! by the CPU this thread uses (a shared machine's wall clock says more about its neighbours).
//! No timing is asserted anywhere.

use std::hint::black_box;
use std::time::Duration;

use backend_ai::audio::{Audio, Policy, Purpose, SendFormat};
use backend_ai::domain::reading::pauses::{self, CutConfig, RATE};
use criterion::{Criterion, criterion_group, criterion_main};

fn ten_minute_reading() -> Vec<i16> {
    let sentences: Vec<Vec<i16>> = (1..=6)
        .map(|index| {
            let path = format!("{}/tests/fixtures/audio/reading/north-wind-{index}.ogg", env!("CARGO_MANIFEST_DIR"));
            let bytes = std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
            let policy = Policy { max_duration: Duration::from_secs(60), send: SendFormat::Wav };
            Audio::normalise(bytes.into(), Purpose::Transcription, policy).expect(&path).pcm().expect("pcm")
        })
        .collect();
    let pause = vec![0i16; RATE * 8 / 10];
    let mut reading = Vec::with_capacity(600 * RATE);
    'filling: loop {
        for sentence in &sentences {
            if reading.len() + sentence.len() + pause.len() > 600 * RATE {
                break 'filling;
            }
            reading.extend_from_slice(sentence);
            reading.extend_from_slice(&pause);
        }
    }
    reading.resize(600 * RATE, 0);
    reading
}

fn cut_cpu(c: &mut Criterion) {
    let reading = ten_minute_reading();
    let config = CutConfig::default();
    let pieces = pauses::cut(&reading, &config).len();
    let mut group = c.benchmark_group("cut a reading at its pauses, CPU time");
    group.measurement_time(Duration::from_secs(10)).sample_size(20);
    group.bench_function(format!("600 s of 16 kHz speech into {pieces} pieces"), |b| {
        b.iter_custom(|iterations| {
            let start = thread_cpu();
            for _ in 0..iterations {
                black_box(pauses::cut(black_box(&reading), &config));
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

criterion_group!(benches, cut_cpu);
criterion_main!(benches);
