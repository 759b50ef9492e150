//! Verification of AWS Signature Version 4 on incoming requests.
//!
//! When credentials are configured, every request must carry an `Authorization` header signed with
//! them. The signature is recomputed from the request exactly as the client built it (the headers
//! it lists as signed, the body's SHA-256) and compared in constant time; the request time must be
//! within 15 minutes of ours. Stateless: one call per request.

use axum::http::{HeaderMap, Method, Uri};
use sha2::{Digest, Sha256};

use crate::fault::Fault;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const MAX_SKEW_SECS: i64 = 15 * 60;

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .into()
}

struct Authorization<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let rest = value.strip_prefix(ALGORITHM)?.trim_start();
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed_headers = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let mut scope = credential?.splitn(5, '/');
    let auth = Authorization {
        access_key: scope.next()?,
        date: scope.next()?,
        region: scope.next()?,
        service: scope.next()?,
        signed_headers: signed_headers?,
        signature: signature?,
    };
    (scope.next()? == "aws4_request").then_some(auth)
}

/// Seconds since the epoch of an `x-amz-date` value (`20261126T163000Z`).
fn parse_amz_date(s: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(s, format)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

fn canonical_query(uri: &Uri) -> String {
    let Some(q) = uri.query() else {
        return String::new();
    };
    let mut pairs: Vec<(&str, &str)> = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn header_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// Checks the request's signature against `(access_key_id, secret)`; `now` is epoch seconds.
pub fn verify(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    credentials: &(String, String),
    now: i64,
) -> Result<(), Fault> {
    let auth_header = headers
        .get("authorization")
        .ok_or_else(|| Fault::missing_auth("Request is missing Authentication Token"))?;
    let auth_text = auth_header
        .to_str()
        .map_err(|_| Fault::invalid_signature("Authorization header is not valid text"))?;
    let auth = parse_authorization(auth_text).ok_or_else(|| {
        Fault::invalid_signature(
            "Authorization header is not a well-formed AWS4-HMAC-SHA256 signature",
        )
    })?;
    if auth.access_key != credentials.0 {
        return Err(Fault::invalid_signature(
            "The security token included in the request is invalid",
        ));
    }
    let amz_date = header_value(headers, "x-amz-date")
        .ok_or_else(|| Fault::invalid_signature("Request is missing the X-Amz-Date header"))?;
    let when = parse_amz_date(&amz_date)
        .ok_or_else(|| Fault::invalid_signature("X-Amz-Date is not a valid date"))?;
    if (now - when).abs() > MAX_SKEW_SECS || !amz_date.starts_with(auth.date) {
        return Err(Fault::invalid_signature(
            "Signature expired or not yet valid: the request time is too far from the server time",
        ));
    }
    let signed: Vec<&str> = auth.signed_headers.split(';').collect();
    if !signed.contains(&"host") {
        return Err(Fault::invalid_signature("The host header must be signed"));
    }
    let mut canonical_headers = String::new();
    for name in &signed {
        let value = header_value(headers, name).ok_or_else(|| {
            Fault::invalid_signature(format!("Signed header {name} is missing from the request"))
        })?;
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&value);
        canonical_headers.push('\n');
    }
    let path = if uri.path().is_empty() {
        "/"
    } else {
        uri.path()
    };
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        method.as_str(),
        path,
        canonical_query(uri),
        canonical_headers,
        auth.signed_headers,
        hex::encode(Sha256::digest(body)),
    );
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let mut key = hmac(
        format!("AWS4{}", credentials.1).as_bytes(),
        auth.date.as_bytes(),
    );
    for part in [auth.region, auth.service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let expected = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    let given = auth.signature.as_bytes();
    let same = expected.len() == given.len()
        && expected
            .as_bytes()
            .iter()
            .zip(given)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(Fault::invalid_signature(
            "The request signature we calculated does not match the signature you provided",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    use std::time::{Duration, SystemTime};

    /// Signs with the AWS SDK's own signer, so our verifier is checked against a client we did
    /// not write.
    fn signed_headers(secret: &str, body: &[u8], at: SystemTime) -> HeaderMap {
        let identity = Credentials::new("AKIDTEST", secret, None, None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("swf")
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let headers = [
            ("host", "127.0.0.1:9999"),
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", "SimpleWorkflowService.ListDomains"),
        ];
        let signable = SignableRequest::new(
            "POST",
            "http://127.0.0.1:9999/",
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(k, v.parse().unwrap());
        }
        for (k, v) in instructions.headers() {
            map.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    fn now_secs() -> i64 {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[test]
    fn accepts_sdk_signature_and_rejects_tampering() {
        let creds = ("AKIDTEST".to_string(), "s3cret".to_string());
        let body = br#"{"registrationStatus":"REGISTERED"}"#;
        let uri: Uri = "/".parse().unwrap();
        let h = signed_headers("s3cret", body, SystemTime::now());
        verify(&Method::POST, &uri, &h, body, &creds, now_secs()).unwrap();

        let err = verify(&Method::POST, &uri, &h, b"{}", &creds, now_secs()).unwrap_err();
        assert_eq!(err.code(), "InvalidSignatureException");

        let wrong = signed_headers("other", body, SystemTime::now());
        assert!(verify(&Method::POST, &uri, &wrong, body, &creds, now_secs()).is_err());

        let old = signed_headers(
            "s3cret",
            body,
            SystemTime::now() - Duration::from_secs(3600),
        );
        assert!(verify(&Method::POST, &uri, &old, body, &creds, now_secs()).is_err());

        let err = verify(
            &Method::POST,
            &uri,
            &HeaderMap::new(),
            body,
            &creds,
            now_secs(),
        )
        .unwrap_err();
        assert_eq!(err.code(), "MissingAuthenticationTokenException");
    }
}
