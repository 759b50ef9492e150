//! SWF-shaped errors returned to clients.
//!
//! Every request that cannot be served ends as a [`Fault`]: a shape name that the AWS SDKs match on
//! (`__type` after the `#`), a human message and an HTTP status. Faults are built by the decoder, the
//! signature check and the state machine, and rendered once by the HTTP layer.

use axum::http::StatusCode;

/// An error answer in the SWF JSON 1.0 error format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub status: StatusCode,
    /// Fully qualified shape, e.g. `com.amazonaws.swf.base.model#UnknownResourceFault`.
    pub shape: &'static str,
    pub message: String,
}

macro_rules! swf_fault {
    ($fn_name:ident, $shape:literal) => {
        pub fn $fn_name(message: impl Into<String>) -> Fault {
            Fault {
                status: StatusCode::BAD_REQUEST,
                shape: concat!("com.amazonaws.swf.base.model#", $shape),
                message: message.into(),
            }
        }
    };
}

impl Fault {
    swf_fault!(unknown_resource, "UnknownResourceFault");
    swf_fault!(type_already_exists, "TypeAlreadyExistsFault");
    swf_fault!(type_deprecated, "TypeDeprecatedFault");
    swf_fault!(domain_already_exists, "DomainAlreadyExistsFault");
    swf_fault!(domain_deprecated, "DomainDeprecatedFault");
    swf_fault!(already_started, "WorkflowExecutionAlreadyStartedFault");
    swf_fault!(default_undefined, "DefaultUndefinedFault");
    swf_fault!(limit_exceeded, "LimitExceededFault");
    swf_fault!(operation_not_permitted, "OperationNotPermittedFault");

    pub fn validation(message: impl Into<String>) -> Fault {
        Fault {
            status: StatusCode::BAD_REQUEST,
            shape: "com.amazon.coral.validate#ValidationException",
            message: message.into(),
        }
    }

    pub fn serialization(message: impl Into<String>) -> Fault {
        Fault {
            status: StatusCode::BAD_REQUEST,
            shape: "com.amazon.coral.service#SerializationException",
            message: message.into(),
        }
    }

    pub fn unknown_operation(message: impl Into<String>) -> Fault {
        Fault {
            status: StatusCode::BAD_REQUEST,
            shape: "com.amazon.coral.service#UnknownOperationException",
            message: message.into(),
        }
    }

    pub fn missing_auth(message: impl Into<String>) -> Fault {
        Fault {
            status: StatusCode::FORBIDDEN,
            shape: "com.amazon.coral.service#MissingAuthenticationTokenException",
            message: message.into(),
        }
    }

    pub fn invalid_signature(message: impl Into<String>) -> Fault {
        Fault {
            status: StatusCode::FORBIDDEN,
            shape: "com.amazon.coral.service#InvalidSignatureException",
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Fault {
        Fault {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            shape: "com.amazon.coral.service#InternalFailure",
            message: message.into(),
        }
    }

    /// The JSON body, as SWF sends it.
    pub fn body(&self) -> String {
        serde_json::json!({ "__type": self.shape, "message": self.message }).to_string()
    }

    /// Shape name without namespace, as the SDKs report it.
    pub fn code(&self) -> &'static str {
        self.shape.rsplit('#').next().unwrap_or(self.shape)
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SWF: &str = "com.amazonaws.swf.base.model#";

    #[test]
    fn body_carries_namespaced_shape() {
        let f = Fault::unknown_resource("no such domain");
        let v: serde_json::Value = serde_json::from_str(&f.body()).unwrap();
        assert_eq!(v["__type"], format!("{SWF}UnknownResourceFault"));
        assert_eq!(f.code(), "UnknownResourceFault");
        assert_eq!(f.status, StatusCode::BAD_REQUEST);
    }
}
