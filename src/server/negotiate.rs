//! HTTP content negotiation: whether a client's `Accept` or `Accept-Encoding` list accepts an
//! item, by its weight (RFC 9110, 12.4.2: `q=0` says "not acceptable").

/// Whether `list` (one header's value, comma-separated) names `wanted`, compared without case:
/// `Some(weight above 0)` when it does (no `q` weighs 1, an unreadable one 0), `None` when it
/// does not.
pub fn listed(list: &str, wanted: &str) -> Option<bool> {
    list.split(',').find_map(|item| {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or_default().trim();
        name.eq_ignore_ascii_case(wanted).then(|| {
            parts
                .find_map(|p| p.split_once('=').filter(|(k, _)| k.trim().eq_ignore_ascii_case("q")))
                .is_none_or(|(_, q)| q.trim().parse::<f32>().is_ok_and(|q| q > 0.0))
        })
    })
}
