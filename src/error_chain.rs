//! One line from an error and its causes, for messages and logs that keep a cause as text.

/// The message of `err` followed by those of its sources, joined by `: `; a source whose text
/// the message already contains is not repeated.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{message}")]
    struct Outer {
        message: &'static str,
        source: std::io::Error,
    }

    #[test]
    fn error_chain_adds_each_source_once() {
        let refused = || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let plain = Outer {
            message: "could not connect",
            source: refused(),
        };
        assert_eq!(error_chain(&plain), "could not connect: refused");
        let repeating = Outer {
            message: "could not connect (refused)",
            source: refused(),
        };
        assert_eq!(
            error_chain(&repeating),
            "could not connect (refused)",
            "the source text is already in the message"
        );
    }
}
