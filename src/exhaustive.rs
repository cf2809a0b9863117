//! Inputs for tests that try every short case instead of a sample: a rule checked over all of them cannot
//! miss an edge that a property test's generator happens not to reach.

/// Every sequence of length `0..=max_len` over `alphabet`, shortest first.
pub(crate) fn sequences<T: Clone>(alphabet: &[T], max_len: usize) -> Vec<Vec<T>> {
    let mut all = vec![Vec::new()];
    let mut last: Vec<Vec<T>> = vec![Vec::new()];
    for _ in 0..max_len {
        last = last
            .iter()
            .flat_map(|s| alphabet.iter().map(move |x| [&s[..], std::slice::from_ref(x)].concat()))
            .collect();
        all.extend(last.iter().cloned());
    }
    all
}

/// Every text of up to `max_len` characters over `alphabet`, shortest first.
pub(crate) fn texts(alphabet: &[char], max_len: usize) -> Vec<String> {
    sequences(alphabet, max_len).into_iter().map(String::from_iter).collect()
}
