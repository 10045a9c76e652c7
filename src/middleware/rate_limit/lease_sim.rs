//! Simulated instances spending leases and credit of one shared GCRA, on a paused clock: the
//! bound stated in `lease.rs`, `A(W) ≤ b + r·(W + L) + 2·N·n`, checked for every window of
//! several lengths under schedules that stress it (everyone draining at once, bursts as leases
//! expire, leases spent just before they expire, one instance dying with a lease, skewed
//! traffic, refused requests giving tokens back), with Redis's round trip a random 0 to 4 ms
//! each way; and one instance alone held to the exact GCRA, `b + r·W`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use futures::FutureExt;

use super::lease::{Grant, Grantor, Leases, Take};

/// `gcra.lua` over the tokio clock: the one admitter, as Redis is.
struct Gcra {
    interval: Duration,
    burst: u32,
    tat: Mutex<HashMap<String, Instant>>,
    rng: Mutex<StdRng>,
    /// Lease requests answered.
    asked: AtomicU64,
}

impl Gcra {
    fn delay(&self) -> Duration {
        Duration::from_micros(self.rng.lock().expect("rng").random_range(0..4_000))
    }

    /// `gcra.lua`: charge `owed` whatever the bucket holds, then grant up to `want`.
    fn decide(&self, key: &str, want: u64, owed: u64) -> Grant {
        self.asked.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut tats = self.tat.lock().expect("tat");
        let mut tat = tats.get(key).copied().unwrap_or(now).max(now);
        tat += self.interval * u32::try_from(owed).expect("small");
        let capacity = self.interval * self.burst;
        let room = |tat: Instant| {
            u64::try_from((now + capacity).saturating_duration_since(tat).as_nanos() / self.interval.as_nanos())
                .expect("small")
        };
        let granted = want.min(room(tat));
        tat += self.interval * u32::try_from(granted).expect("small");
        tats.insert(key.to_owned(), tat);
        let remaining = room(tat);
        let wait = if remaining == 0 {
            (tat + self.interval).saturating_duration_since(now + capacity)
        } else {
            Duration::ZERO
        };
        Grant { granted, remaining, wait }
    }
}

impl Grantor for Arc<Gcra> {
    type Error = std::convert::Infallible;

    fn grant(&self, key: &str, want: u64, owed: u64) -> impl Future<Output = Result<Grant, Self::Error>> + Send {
        let gcra = self.clone();
        let key = key.to_owned();
        async move {
            tokio::time::sleep(gcra.delay()).await;
            let grant = gcra.decide(&key, want, owed);
            tokio::time::sleep(gcra.delay()).await;
            Ok(grant)
        }
    }
}

struct Limit {
    per_second: u32,
    burst: u32,
    lease: Duration,
}

/// Every instance's arrival times, from the start.
type Schedule = Vec<Vec<Duration>>;

/// Runs `schedule` on one instance each; the times requests were served, and the lease size.
async fn run(limit: &Limit, schedule: Schedule, seed: u64) -> (Vec<Duration>, u64) {
    let interval = Duration::from_secs(1) / limit.per_second;
    let gcra = Arc::new(Gcra {
        interval,
        burst: limit.burst,
        tat: Mutex::new(HashMap::new()),
        rng: Mutex::new(StdRng::seed_from_u64(seed)),
        asked: AtomicU64::new(0),
    });
    let served = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let mut instances = Vec::new();
    let mut size = 0;
    for (index, arrivals) in schedule.into_iter().enumerate() {
        let leases = Arc::new(Leases::new(limit.lease, interval, limit.burst));
        size = leases.size();
        let (gcra, served) = (gcra.clone(), served.clone());
        let mut rng = StdRng::seed_from_u64(seed ^ (index as u64 + 1));
        instances.push(tokio::spawn(async move {
            let mut requests = Vec::new();
            for at in arrivals {
                tokio::time::sleep_until(start + at).await;
                // One in ten is refused by another limit after this one admitted it.
                let refused_elsewhere = rng.random_range(0..10) == 0;
                let (leases, gcra, served) = (leases.clone(), gcra.clone(), served.clone());
                requests.push(tokio::spawn(async move {
                    let (taken, charge) = leases.take("user", &gcra).await;
                    if let Take::Admitted { .. } = taken {
                        if refused_elsewhere {
                            leases.give_back("user");
                        } else {
                            served.lock().expect("served").push(start.elapsed());
                        }
                    }
                    // The request's decision is complete: its lease request, if any, goes now.
                    drop(charge);
                }));
            }
            for request in requests {
                request.await.expect("request");
            }
        }));
    }
    for instance in instances {
        instance.await.expect("instance");
    }
    let mut served = served.lock().expect("served").clone();
    served.sort();
    (served, size)
}

/// The most requests served in any window of length `window`.
fn most_in(served: &[Duration], window: Duration) -> usize {
    let mut end = 0;
    let mut most = 0;
    for (start, at) in served.iter().enumerate() {
        while end < served.len() && served[end] <= *at + window {
            end += 1;
        }
        most = most.max(end - start);
    }
    most
}

fn assert_bound(name: &str, limit: &Limit, instances: usize, served: &[Duration], size: u64) {
    let rate = f64::from(limit.per_second);
    let tau = Duration::from_secs(1) / limit.per_second;
    for window in [tau, limit.lease, Duration::from_millis(500), Duration::from_secs(1), Duration::from_secs(10)] {
        let bound =
            f64::from(limit.burst) + rate * (window + limit.lease).as_secs_f64() + (2 * instances as u64 * size) as f64;
        let most = most_in(served, window);
        assert!(most as f64 <= bound, "{name}: {most} served in {window:?}, bound {bound}");
    }
}

/// `count` arrivals from `from`, `every` apart, each shifted by up to `jitter`.
fn steady(rng: &mut StdRng, from: Duration, every: Duration, count: u32, jitter: Duration) -> Vec<Duration> {
    let mut arrivals: Vec<Duration> = (0..count)
        .map(|n| from + every * n + Duration::from_nanos(rng.random_range(0..=jitter.as_nanos() as u64)))
        .collect();
    arrivals.sort();
    arrivals
}

fn schedules(limit: &Limit, instances: usize, rng: &mut StdRng) -> Vec<(&'static str, Schedule)> {
    let tau = Duration::from_secs(1) / limit.per_second;
    let ms = Duration::from_millis;
    let every_instance = |make: &mut dyn FnMut(usize) -> Vec<Duration>| (0..instances).map(make).collect::<Schedule>();
    vec![
        ("all over the limit", every_instance(&mut |_| steady(rng, ms(0), tau / 2, 20 * limit.per_second, tau))),
        (
            "idle, then all drain at once",
            every_instance(&mut |_| {
                let mut arrivals = vec![ms(5_000); 3 * limit.burst as usize];
                arrivals.extend(steady(rng, ms(5_001), tau, 5 * limit.per_second, ms(1)));
                arrivals
            }),
        ),
        (
            "bursts as leases expire",
            every_instance(&mut |index| {
                (0..40u32)
                    .flat_map(|round| vec![limit.lease * round + ms(index as u64); 2 * limit.burst as usize])
                    .collect()
            }),
        ),
        (
            "leases spent just before they expire",
            every_instance(&mut |index| match index {
                0 => (0..20u32)
                    .flat_map(|round| {
                        let asked = limit.lease * 2 * round;
                        let mut arrivals = vec![asked];
                        arrivals.extend(vec![asked + limit.lease - ms(1); limit.burst as usize]);
                        arrivals
                    })
                    .collect(),
                _ => steady(rng, ms(0), tau, 40 * limit.per_second, tau),
            }),
        ),
        (
            "skewed, one instance dies holding a lease",
            every_instance(&mut |index| match index {
                0 => steady(rng, ms(0), tau / 4, 40 * limit.per_second, tau),
                1 => steady(rng, ms(0), tau, limit.per_second, tau),
                _ => steady(rng, ms(3), tau * 5, 2 * limit.per_second, tau * 3),
            }),
        ),
    ]
}

#[tokio::test(start_paused = true)]
async fn leased_instances_stay_within_the_stated_bound_in_every_window() {
    let limits = [
        Limit { per_second: 50, burst: 10, lease: Duration::from_millis(200) },
        Limit { per_second: 100, burst: 50, lease: Duration::from_secs(1) },
        Limit { per_second: 1, burst: 60, lease: Duration::from_secs(1) },
    ];
    for limit in &limits {
        for instances in [1, 3, 8] {
            for seed in 0..3 {
                let mut rng = StdRng::seed_from_u64(seed);
                for (name, schedule) in schedules(limit, instances, &mut rng) {
                    let offered: usize = schedule.iter().map(Vec::len).sum();
                    let (served, size) = run(limit, schedule, seed).await;
                    let name = format!("{name}, {instances} instances, {}/s, seed {seed}", limit.per_second);
                    assert_bound(&name, limit, instances, &served, size);
                    assert!(!served.is_empty() && served.len() <= offered, "{name}");
                }
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn one_instance_under_the_limit_is_never_refused_and_asks_once_per_lease() {
    let limit = Limit { per_second: 100, burst: 50, lease: Duration::from_secs(1) };
    let interval = Duration::from_secs(1) / limit.per_second;
    let gcra = Arc::new(Gcra {
        interval,
        burst: limit.burst,
        tat: Mutex::new(HashMap::new()),
        rng: Mutex::new(StdRng::seed_from_u64(7)),
        asked: AtomicU64::new(0),
    });
    let leases = Leases::new(limit.lease, interval, limit.burst);
    // Half the limit for ten seconds: 500 requests, none of them waiting for an answer.
    for _ in 0..500 {
        let taken = std::pin::pin!(leases.take("user", &gcra)).now_or_never().map(|(taken, _charge)| taken);
        assert!(matches!(taken, Some(Take::Admitted { .. })), "{taken:?}");
        tokio::time::sleep(interval * 2).await;
    }
    // A lease of 50 lasts 1 s at 50 a second: about one ask per second, not one per request.
    let asked = gcra.asked.load(Ordering::Relaxed);
    assert!(asked <= 12, "{asked} leases for 500 requests");
}

#[tokio::test(start_paused = true)]
async fn one_instance_alone_is_held_to_the_exact_limit() {
    for limit in [
        Limit { per_second: 50, burst: 10, lease: Duration::from_millis(200) },
        Limit { per_second: 1, burst: 60, lease: Duration::from_secs(1) },
    ] {
        for seed in 0..3 {
            let mut rng = StdRng::seed_from_u64(seed);
            for (name, schedule) in schedules(&limit, 1, &mut rng) {
                let (served, _) = run(&limit, schedule, seed).await;
                let rate = f64::from(limit.per_second);
                for window in [Duration::from_millis(500), Duration::from_secs(1), Duration::from_secs(10)] {
                    let exact = f64::from(limit.burst) + rate * window.as_secs_f64();
                    let most = most_in(&served, window);
                    assert!(
                        most as f64 <= exact + 1.0,
                        "{name}, seed {seed}: {most} served in {window:?}, GCRA {exact}"
                    );
                }
            }
        }
    }
}
