//! A `corrupt` fault on the wire: the request goes to the real connector (the service
//! receives it and acts on it), and the answer's body is corrupted on its way to the SDK.
//!
//! The body is read (at most the client's limit, [`DEFAULT_CORRUPT_BODY_LIMIT`] unless set),
//! corrupted with chaos-core's [`Corruption`] (mode and seed from the decision, so a call is
//! corrupted the same way on every run), and handed to the SDK in memory. The status and the
//! headers are the service's, but for the framing: `Content-Length` is the corrupted body's
//! length and `Transfer-Encoding` is dropped, so the answer is whole by its framing and only
//! its content is wrong. Checksums of the content (DynamoDB's `x-amz-crc32`, S3's
//! `x-amz-checksum-*`, `Content-MD5`, ETags) are left as the service sent them: wrong for the
//! corrupted body, as they are when a body is corrupted in transit.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use chaos_core::corrupt::Corruption;

/// The most bytes of an answer a [`ChaosHttpClient`](super::ChaosHttpClient) reads to corrupt
/// it, unless [`corrupt_body_limit`](super::ChaosHttpClientBuilder::corrupt_body_limit) says
/// otherwise: 16 MiB, above the largest answer of a non-streaming AWS operation (a DynamoDB
/// `BatchGetItem` returns at most 16 MB of items). A longer answer (an S3 object, a streamed
/// Lambda response) is read up to the limit, corrupted there, and ends there.
pub const DEFAULT_CORRUPT_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// `response` with its body corrupted by `corruption`, read up to `limit` bytes. The answer
/// to a `HEAD` request has no body to corrupt (its `Content-Length` describes the resource),
/// so it is returned as it came. A body that fails to arrive fails the call as the connector
/// would have: an I/O error.
pub(crate) async fn corrupt_response(
    mut response: HttpResponse,
    corruption: &Corruption,
    limit: usize,
    is_head: bool,
) -> Result<HttpResponse, ConnectorError> {
    if is_head {
        return Ok(response);
    }
    let body = read_at_most(response.take_body(), limit)
        .await
        .map_err(|error| ConnectorError::io(error.into()))?;
    let corrupted = corruption.apply(&body);
    let headers = response.headers_mut();
    headers.insert("content-length", corrupted.len().to_string());
    headers.remove("transfer-encoding");
    *response.body_mut() = SdkBody::from(corrupted);
    Ok(response)
}

/// The first `limit` bytes of `body` (all of it when shorter). Stops reading at the limit:
/// the rest of a long body is never buffered.
async fn read_at_most(
    body: SdkBody,
    limit: usize,
) -> Result<Vec<u8>, aws_smithy_types::byte_stream::error::Error> {
    if let Some(bytes) = body.bytes() {
        return Ok(bytes[..bytes.len().min(limit)].to_vec());
    }
    let mut stream = ByteStream::new(body);
    let mut read = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let room = limit - read.len();
        if chunk.len() >= room {
            read.extend_from_slice(&chunk[..room]);
            break;
        }
        read.extend_from_slice(&chunk);
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chaos_core::corrupt::CorruptMode;

    fn response(body: SdkBody, headers: &[(&'static str, &'static str)]) -> HttpResponse {
        let mut response = HttpResponse::new(200.try_into().expect("status"), body);
        for (name, value) in headers {
            response.headers_mut().insert(*name, *value);
        }
        response
    }

    fn body_of(response: &HttpResponse) -> &[u8] {
        response.body().bytes().expect("an in-memory body")
    }

    const ITEM: &str = r#"{"Item":{"id":{"S":"1"},"total":{"N":"42"}}}"#;

    #[tokio::test]
    async fn framing_follows_the_corrupted_body_and_checksums_stay() {
        for mode in [
            CorruptMode::Truncate,
            CorruptMode::Flip,
            CorruptMode::Empty,
            CorruptMode::JsonInvalid,
        ] {
            let corruption = Corruption::new(mode, 9);
            let answer = response(
                SdkBody::from(ITEM),
                &[
                    ("content-length", "45"),
                    ("transfer-encoding", "chunked"),
                    ("x-amz-crc32", "1234"),
                    ("content-type", "application/x-amz-json-1.0"),
                ],
            );
            let corrupted = corrupt_response(answer, &corruption, 1024, false)
                .await
                .expect("an answer");
            let expected = corruption.apply(ITEM.as_bytes());
            assert_eq!(body_of(&corrupted), expected, "{mode}");
            let headers = corrupted.headers();
            assert_eq!(
                headers.get("content-length"),
                Some(expected.len().to_string().as_str())
            );
            assert_eq!(headers.get("transfer-encoding"), None);
            assert_eq!(headers.get("x-amz-crc32"), Some("1234"));
            assert_eq!(
                headers.get("content-type"),
                Some("application/x-amz-json-1.0")
            );
            assert_eq!(corrupted.status().as_u16(), 200);
        }
    }

    #[tokio::test]
    async fn a_long_body_is_read_up_to_the_limit_only() {
        // In memory here; tests/wire_corrupt.rs reads a streamed answer from moto.
        let long = vec![b'a'; 10_000];
        let corruption = Corruption::new(CorruptMode::Flip, 3);
        let answer = response(SdkBody::from(long.clone()), &[]);
        let corrupted = corrupt_response(answer, &corruption, 2_500, false)
            .await
            .expect("an answer");
        assert_eq!(body_of(&corrupted), corruption.apply(&long[..2_500]));
    }

    #[tokio::test]
    async fn a_head_answer_is_left_alone() {
        let answer = response(SdkBody::empty(), &[("content-length", "5000")]);
        let corruption = Corruption::new(CorruptMode::JsonInvalid, 1);
        let kept = corrupt_response(answer, &corruption, 1024, true)
            .await
            .expect("an answer");
        assert_eq!(kept.headers().get("content-length"), Some("5000"));
        assert_eq!(body_of(&kept), b"");
    }
}
