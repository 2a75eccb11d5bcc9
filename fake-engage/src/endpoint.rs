//! Names the endpoint a request hit, so tests can count requests per endpoint from the
//! request log without matching paths themselves.

/// The endpoint of a request, as `"METHOD /pattern"` without the API version and query:
/// `GET /contacts/id`, `POST /contacts/bulk`, `PATCH /contacts/bulk`,
/// `GET /contacts/bulk/status`, `GET /contacts/{id}`, `PATCH /contacts/{id}`,
/// `POST /contacts`, `GET /contacts/changes`, `POST /receipts`, … A path outside `/api/v2` or
/// `/api/v3` is named as sent (without its query).
pub fn endpoint(method: &str, target: &str) -> String {
    let path = target.split('?').next().unwrap_or_default();
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let versioned = segs.len() >= 2 && segs[0] == "api" && (segs[1] == "v2" || segs[1] == "v3");
    if !versioned {
        return format!("{method} {path}");
    }
    let named: Vec<&str> = segs[2..]
        .iter()
        .map(|s| match s.as_str() {
            s if crate::util::parse_guid(s).is_some() => "{id}",
            s => s,
        })
        .collect();
    format!("{method} /{}", named.join("/"))
}

#[cfg(test)]
mod tests {
    use super::endpoint;

    #[test]
    fn requests_are_named_by_endpoint() {
        let id = "1c277c0a-5b1e-4f7b-9a53-0f9f7c1e2d3a";
        for (method, target, want) in [
            (
                "GET",
                "/api/v3/contacts/id?email=a%40b.se",
                "GET /contacts/id",
            ),
            (
                "POST",
                "/api/v3/contacts/bulk?contactType=Member",
                "POST /contacts/bulk",
            ),
            ("PATCH", "/api/v3/contacts/bulk", "PATCH /contacts/bulk"),
            (
                "GET",
                "/api/v2/contacts/bulk/status?batchId=x",
                "GET /contacts/bulk/status",
            ),
            (
                "GET",
                &format!("/api/v3/contacts/{id}"),
                "GET /contacts/{id}",
            ),
            ("POST", "/api/v3/receipts", "POST /receipts"),
            ("GET", "/health?x=1", "GET /health"),
        ] {
            assert_eq!(endpoint(method, target), want, "{target}");
        }
    }
}
