//! Smooth weighted round-robin (nginx's algorithm), precomputed into a cyclic schedule.
//!
//! The request path then picks `schedule[counter % len]` with one atomic increment, instead of
//! running the algorithm under a lock shared by every worker. The schedule is rebuilt only when
//! the set of usable backends or their effective weights change (health, breaker, warm-up).

/// Longest schedule built; larger weight sums are scaled down proportionally.
const MAX_LEN: u64 = 1 << 16;

/// Builds one period of the smooth weighted round-robin sequence over `(backend, weight)` pairs.
///
/// Weights are reduced by their greatest common divisor first, so 4:4:8 and 1:1:2 give the same
/// four-entry cycle. After the nginx pass, entries that would send two requests in a row to the
/// same backend (including across the wrap-around) are swapped apart where another order exists.
pub fn build(weights: &[(usize, u32)]) -> Vec<usize> {
    let weights: Vec<(usize, u64)> = weights
        .iter()
        .filter(|(_, w)| *w > 0)
        .map(|&(i, w)| (i, w as u64))
        .collect();
    if weights.is_empty() {
        return Vec::new();
    }
    let divisor = weights.iter().fold(0, |g, &(_, w)| gcd(g, w));
    let mut weights: Vec<(usize, u64)> = weights.iter().map(|&(i, w)| (i, w / divisor)).collect();
    let total: u64 = weights.iter().map(|(_, w)| w).sum();
    if total > MAX_LEN {
        for (_, w) in weights.iter_mut() {
            *w = (*w * MAX_LEN / total).max(1);
        }
    }
    let total: i64 = weights.iter().map(|(_, w)| *w as i64).sum();
    let mut current = vec![0i64; weights.len()];
    let mut schedule = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for (k, (_, w)) in weights.iter().enumerate() {
            current[k] += *w as i64;
            if current[k] > current[best] {
                best = k;
            }
        }
        current[best] -= total;
        schedule.push(weights[best].0);
    }
    spread(&mut schedule);
    schedule
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Swaps entries so that no backend appears twice in a row (cyclically) where that can be
/// avoided. Bounded to small schedules; large ones keep the nginx order, which is already smooth.
fn spread(s: &mut [usize]) {
    let len = s.len();
    if !(3..=4096).contains(&len) {
        return;
    }
    for i in 0..len {
        let next = (i + 1) % len;
        if s[i] != s[next] {
            continue;
        }
        for k in 1..len {
            let j = (next + k) % len;
            if s[j] == s[next] {
                continue;
            }
            let before = repeats_around(s, next, j);
            s.swap(next, j);
            if repeats_around(s, next, j) < before {
                break;
            }
            s.swap(next, j);
        }
    }
}

/// Adjacent equal pairs (cyclic) that touch position `a` or `b`.
fn repeats_around(s: &[usize], a: usize, b: usize) -> usize {
    let len = s.len();
    let mut starts = [(a + len - 1) % len, a, (b + len - 1) % len, b];
    starts.sort_unstable();
    let mut count = 0;
    for (n, &p) in starts.iter().enumerate() {
        if (n == 0 || starts[n - 1] != p) && s[p] == s[(p + 1) % len] {
            count += 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(s: &[usize], n: usize) -> Vec<usize> {
        (0..n)
            .map(|i| s.iter().filter(|&&x| x == i).count())
            .collect()
    }

    fn adjacent_repeats(s: &[usize]) -> usize {
        (0..s.len())
            .filter(|&i| s[i] == s[(i + 1) % s.len()])
            .count()
    }

    #[test]
    fn one_one_two_interleaves_without_repeats() {
        let s = build(&[(0, 1), (1, 1), (2, 2)]);
        assert_eq!(s.len(), 4);
        assert_eq!(counts(&s, 3), vec![1, 1, 2]);
        assert_eq!(adjacent_repeats(&s), 0, "{s:?}");
    }

    #[test]
    fn scaled_weights_give_the_same_cycle() {
        assert_eq!(build(&[(0, 4), (1, 4), (2, 8)]).len(), 4);
    }

    #[test]
    fn shares_match_weights() {
        let table: [&[(usize, u32)]; 4] = [
            &[(0, 5), (1, 1), (2, 1)],
            &[(0, 3), (1, 2)],
            &[(0, 1)],
            &[(0, 7), (1, 11), (2, 13), (3, 1)],
        ];
        for weights in table {
            let s = build(weights);
            let total: u32 = weights.iter().map(|(_, w)| w).sum();
            assert_eq!(s.len() as u32, total);
            for &(i, w) in weights {
                assert_eq!(counts(&s, 4)[i] as u32, w, "{weights:?}");
            }
        }
    }

    #[test]
    fn repeats_only_when_unavoidable() {
        // 5:1:1 must repeat the heavy backend, but never more than the weights force.
        let s = build(&[(0, 5), (1, 1), (2, 1)]);
        assert_eq!(adjacent_repeats(&s), 3, "{s:?}");
        let s = build(&[(0, 2), (1, 2), (2, 3)]);
        assert_eq!(adjacent_repeats(&s), 0, "{s:?}");
    }

    #[test]
    fn zero_weights_and_empty_sets() {
        assert!(build(&[]).is_empty());
        assert_eq!(build(&[(0, 0), (1, 3)]), vec![1]);
    }

    #[test]
    fn huge_weights_are_bounded() {
        let s = build(&[(0, 1_000_000), (1, 999_999)]);
        assert!(s.len() as u64 <= MAX_LEN + 2);
    }
}
