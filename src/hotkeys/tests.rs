use super::*;

fn keys(report: &[HotKey]) -> Vec<String> {
    report
        .iter()
        .map(|h| String::from_utf8_lossy(&h.key).into_owned())
        .collect()
}

#[test]
fn off_records_nothing() {
    let switch = Switch::new(0);
    let r = Recorder::default();
    for _ in 0..1000 {
        r.record(&switch, Metric::Reads, b"k", 10, || 100);
    }
    assert!(report([&r], Metric::Reads, Window::Second, 101, 0)
        .keys
        .is_empty());
}

#[test]
fn every_request_counts_at_sample_1() {
    let switch = Switch::new(1);
    let r = Recorder::default();
    for i in 0..30 {
        r.record(&switch, Metric::Reads, b"a", 5, || 100);
        if i % 3 == 0 {
            r.record(&switch, Metric::Writes, b"b", 100, || 100);
        }
    }
    let reads = report([&r], Metric::Reads, Window::Second, 101, 1).keys;
    assert_eq!(keys(&reads), ["a"]);
    assert_eq!((reads[0].rate, reads[0].error), (30.0, 0.0));
    let writes = report([&r], Metric::Writes, Window::Second, 101, 1).keys;
    assert_eq!(
        (keys(&writes), writes[0].rate),
        (vec!["b".to_string()], 10.0)
    );
    let bytes = report([&r], Metric::Bytes, Window::Second, 101, 1).keys;
    assert_eq!(keys(&bytes), ["b", "a"]);
    assert_eq!((bytes[0].rate, bytes[1].rate), (1000.0, 150.0));
}

#[test]
fn windows_cover_complete_seconds_only() {
    let switch = Switch::new(1);
    let r = Recorder::default();
    // Ten requests a second for key "s", over seconds 100..=119; "old" only in second 100.
    r.record(&switch, Metric::Reads, b"old", 1, || 100);
    for now in 100..120 {
        for _ in 0..10 {
            r.record(&switch, Metric::Reads, b"s", 1, || now);
        }
    }
    // A sample from a second whose bucket has turned over is not counted by the second (its
    // ten-second period still takes it).
    r.record(&switch, Metric::Reads, b"late", 1, || 108);
    // At 120 the current second is 120: nothing of it yet.
    let second = report([&r], Metric::Reads, Window::Second, 120, 1).keys;
    assert_eq!(
        (keys(&second), second[0].rate),
        (vec!["s".to_string()], 10.0)
    );
    assert!(report([&r], Metric::Reads, Window::Second, 122, 1)
        .keys
        .is_empty());
    let ten = report([&r], Metric::Reads, Window::TenSeconds, 120, 1).keys;
    assert_eq!((keys(&ten), ten[0].rate), (vec!["s".to_string()], 10.0));
    let earlier = report([&r], Metric::Reads, Window::TenSeconds, 110, 1).keys;
    assert_eq!(keys(&earlier), ["s"], "108's bucket had turned over to 119");
    // The minute: ten-second periods 10 and 11 are complete at 120 (period 12).
    let minute = report([&r], Metric::Reads, Window::Minute, 120, 1).keys;
    assert_eq!(keys(&minute), ["s", "late", "old"]);
    assert!((minute[0].rate - 200.0 / 60.0).abs() < 1e-9);
    // Seventy seconds on, everything has left every window.
    assert!(report([&r], Metric::Reads, Window::Minute, 190, 1)
        .keys
        .is_empty());
}

#[test]
fn sampling_estimates_whole_traffic_within_its_bound() {
    let switch = Switch::new(50);
    let workers = [Recorder::default(), Recorder::default()];
    let mut truth = std::collections::HashMap::new();
    // 200,000 requests over 20 keys, key i about (i+1) times rarer than key 0.
    let mut x = 12345u64;
    for n in 0..200_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = format!("k{}", (x % 1000) * (x % 1000) / 50_000);
        *truth.entry(key.clone()).or_insert(0u64) += 1;
        workers[(n % 2) as usize].record(&switch, Metric::Reads, key.as_bytes(), 1, || 100);
    }
    let hot = report(&workers, Metric::Reads, Window::Second, 101, 50).keys;
    assert_eq!(hot.len(), truth.len());
    for h in &hot {
        let true_rate = truth[&String::from_utf8_lossy(&h.key).into_owned()] as f64;
        assert!(
            (h.rate - true_rate).abs() <= h.error,
            "{}: {} ± {} against {true_rate}",
            String::from_utf8_lossy(&h.key),
            h.rate,
            h.error
        );
        if true_rate >= 5000.0 {
            assert!(h.error < h.rate / 2.0, "a bound that says something: {h:?}");
        }
    }
}

#[test]
fn the_switch_remembers_its_period() {
    let s = Switch::new(0);
    assert_eq!((s.sample(), s.period()), (0, DEFAULT_SAMPLE));
    s.on();
    assert_eq!(s.sample(), DEFAULT_SAMPLE);
    s.set_sample(7);
    s.off();
    assert_eq!(s.sample(), 0);
    s.on();
    assert_eq!(s.sample(), 7);
}

#[test]
fn a_report_counts_all_traffic_and_entrants_are_new_hot_keys_above_one_percent() {
    let switch = Switch::new(1);
    let r = Recorder::default();
    // Second 100: "a" 50 reads, "b" 30, and 200 keys read once each (under 1% apiece).
    for _ in 0..50 {
        r.record(&switch, Metric::Reads, b"a", 1, || 100);
    }
    for _ in 0..30 {
        r.record(&switch, Metric::Reads, b"b", 1, || 100);
    }
    for i in 0..200 {
        r.record(
            &switch,
            Metric::Reads,
            format!("cold{i}").as_bytes(),
            1,
            || 100,
        );
    }
    let first = report([&r], Metric::Reads, Window::Second, 101, 1);
    assert_eq!(first.total_rate, 280.0);
    let entrants = Entrants::default();
    assert!(entrants.due(101));
    assert!(!entrants.due(101), "one look per second");
    let entered = entrants.entered(Metric::Reads, &first);
    let entered: Vec<(usize, Vec<u8>)> = entered.into_iter().map(|(n, k)| (n, k.key)).collect();
    assert_eq!(entered, vec![(1, b"a".to_vec()), (2, b"b".to_vec())]);
    // The same keys at the next look: nothing new. A new hot key: only it.
    assert!(entrants.entered(Metric::Reads, &first).is_empty());
    for _ in 0..100 {
        r.record(&switch, Metric::Reads, b"c", 1, || 101);
    }
    let second = report([&r], Metric::Reads, Window::TenSeconds, 102, 1);
    let entered = entrants.entered(Metric::Reads, &second);
    assert_eq!(entered.len(), 1);
    assert_eq!((entered[0].0, &entered[0].1.key[..]), (1, &b"c"[..]));
    assert!(entrants.due(102));
}
