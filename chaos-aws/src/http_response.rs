//! HTTP responses in the shapes Lambda's HTTP front doors expect from a handler: API Gateway
//! REST APIs (payload format 1.0), HTTP APIs (payload format 2.0) and Application Load
//! Balancers. Self-contained (plain JSON values), so other adapters can share it.

use serde_json::{Value, json};

/// Which front door invoked the function, and so which response shape it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HttpShape {
    /// API Gateway REST API (proxy integration, payload format 1.0).
    ApiGatewayRest,
    /// API Gateway HTTP API (payload format 2.0).
    ApiGatewayHttp,
    /// Application Load Balancer target.
    Alb,
}

impl HttpShape {
    /// The shape an event asks for: ALB events carry `requestContext.elb`, HTTP API events
    /// `version: "2.0"`, REST API events `httpMethod` and `requestContext`. `None` for events
    /// that are not HTTP requests (SQS, EventBridge, direct invokes).
    pub fn of_event(event: &Value) -> Option<Self> {
        let context = event.get("requestContext");
        if context.and_then(|c| c.get("elb")).is_some() {
            Some(Self::Alb)
        } else if event.get("version").and_then(Value::as_str) == Some("2.0") && context.is_some() {
            Some(Self::ApiGatewayHttp)
        } else if event.get("httpMethod").is_some() && context.is_some() {
            Some(Self::ApiGatewayRest)
        } else {
            None
        }
    }

    /// A JSON response with `status`, a JSON `body` and `content-type: application/json`; a
    /// 429 or 503 also says `Retry-After: 1`, as throttling front doors do.
    pub fn json_response(self, status: u16, body: &Value) -> Value {
        let mut headers = serde_json::Map::new();
        headers.insert("content-type".into(), "application/json".into());
        if status == 429 || status == 503 {
            headers.insert("retry-after".into(), "1".into());
        }
        let mut response = json!({
            "statusCode": status,
            "headers": headers,
            "body": body.to_string(),
            "isBase64Encoded": false,
        });
        if self == Self::Alb {
            response["statusDescription"] = format!("{status} {}", reason_phrase(status)).into();
        }
        response
    }
}

/// The standard reason phrase of a status (ALB's `statusDescription` needs one).
pub fn reason_phrase(status: u16) -> &'static str {
    let known = match status {
        200 => Some("OK"),
        400 => Some("Bad Request"),
        401 => Some("Unauthorized"),
        403 => Some("Forbidden"),
        404 => Some("Not Found"),
        408 => Some("Request Timeout"),
        409 => Some("Conflict"),
        429 => Some("Too Many Requests"),
        500 => Some("Internal Server Error"),
        502 => Some("Bad Gateway"),
        503 => Some("Service Unavailable"),
        504 => Some("Gateway Timeout"),
        _ => None,
    };
    // Others by class.
    known.unwrap_or(match status {
        100..=199 => "Informational",
        200..=299 => "Success",
        300..=399 => "Redirection",
        400..=499 => "Client Error",
        _ => "Server Error",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_name_their_shape() {
        let alb =
            json!({"requestContext": {"elb": {"targetGroupArn": "arn"}}, "httpMethod": "GET"});
        let http = json!({"version": "2.0", "requestContext": {"http": {"method": "GET"}}});
        let rest = json!({"httpMethod": "GET", "requestContext": {"stage": "prod"}});
        assert_eq!(HttpShape::of_event(&alb), Some(HttpShape::Alb));
        assert_eq!(HttpShape::of_event(&http), Some(HttpShape::ApiGatewayHttp));
        assert_eq!(HttpShape::of_event(&rest), Some(HttpShape::ApiGatewayRest));
        assert_eq!(HttpShape::of_event(&json!({"Records": []})), None);
    }

    #[test]
    fn responses_carry_status_headers_and_a_string_body() {
        let body = json!({"message": "Injected status code 503"});
        let rest = HttpShape::ApiGatewayRest.json_response(503, &body);
        assert_eq!(rest["statusCode"], 503);
        assert_eq!(rest["headers"]["retry-after"], "1");
        assert_eq!(rest["body"], r#"{"message":"Injected status code 503"}"#);
        assert_eq!(rest["isBase64Encoded"], false);
        assert!(rest.get("statusDescription").is_none());
        let alb = HttpShape::Alb.json_response(418, &body);
        assert_eq!(alb["statusDescription"], "418 Client Error");
        assert!(alb["headers"].get("retry-after").is_none());
        assert_eq!(
            HttpShape::Alb.json_response(503, &body)["statusDescription"],
            "503 Service Unavailable"
        );
    }
}
