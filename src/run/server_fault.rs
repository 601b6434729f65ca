//! Which failures of a queue item are the server's own, and transient: the run submits such a
//! job again (at most a few times, journaled) instead of failing it.
//!
//! What counts: a failure inside the server's storage of images and records (the innermost
//! frame of the traceback in its image-record, image-file or SQLite services, as the
//! `TypeError: 'NoneType' object is not subscriptable` of `image_records_sqlite.py` `save`), its
//! save exceptions (`ImageRecordSaveException`, `ImageFileSaveException`), and a database busy
//! past its timeout (`OperationalError: database is locked`). The same graph on the same inputs
//! is expected to succeed when run again.
//!
//! What does not: every error of the workflow's own nodes (a bad value, a missing model, out
//! of memory), which would fail again, and could cost minutes of generation each time.

/// Exception types the server raises when it cannot store an image or its record.
const SAVE_EXCEPTIONS: &[&str] = &["ImageRecordSaveException", "ImageFileSaveException"];

/// Parts of the server's source tree that store images and records.
const STORAGE: &[&str] = &[
    "/app/services/image_records/",
    "/app/services/image_files/",
    "/app/services/shared/sqlite/",
];

/// A short description of the failure when it is a transient fault of the server's own.
#[must_use]
pub fn server_fault(
    error_type: Option<&str>,
    message: Option<&str>,
    traceback: Option<&str>,
) -> Option<String> {
    let error = match (error_type, message) {
        (Some(t), Some(m)) => format!("{t}: {}", m.chars().take(200).collect::<String>()),
        (Some(t), None) => t.to_owned(),
        (None, Some(m)) => m.chars().take(200).collect(),
        (None, None) => return None,
    };
    if error_type.is_some_and(|t| SAVE_EXCEPTIONS.contains(&t)) {
        return Some(error);
    }
    if error_type == Some("OperationalError")
        && message.is_some_and(|m| m.contains("database is locked"))
    {
        return Some(error);
    }
    let innermost = traceback?
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("File \""))?
        .replace('\\', "/");
    let file = innermost.split('"').nth(1)?;
    STORAGE
        .iter()
        .any(|s| file.contains(s))
        .then(|| format!("{error} (in {})", file.rsplit('/').next().unwrap_or(file)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The traceback of the failure seen on a test server (issue 12), shortened.
    const SAVE_TYPE_ERROR: &str = r#"Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/invokeai/app/services/session_processor/session_processor_default.py", line 130, in run_node
    output = invocation.invoke_internal(context=context, services=self._services)
  File "/venv/lib/python3.11/site-packages/invokeai/app/invocations/image.py", line 471, in invoke
    image_dto = context.images.save(image=blurred_image)
  File "/venv/lib/python3.11/site-packages/invokeai/app/services/images/images_default.py", line 98, in create
    self.__invoker.services.image_records.save(
  File "/venv/lib/python3.11/site-packages/invokeai/app/services/image_records/image_records_sqlite.py", line 436, in save
    created_at = datetime.fromisoformat(cursor.fetchone()[0])
TypeError: 'NoneType' object is not subscriptable
"#;

    const NODE_ERROR: &str = r#"Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/invokeai/app/services/session_processor/session_processor_default.py", line 130, in run_node
    output = invocation.invoke_internal(context=context, services=self._services)
  File "/venv/lib/python3.11/site-packages/invokeai/app/invocations/image.py", line 460, in invoke
    blur = ImageFilter.GaussianBlur(self.radius)
TypeError: 'NoneType' object is not subscriptable
"#;

    #[test]
    fn failures_of_the_servers_storage_count_and_the_nodes_own_do_not() {
        let fault = server_fault(
            Some("TypeError"),
            Some("'NoneType' object is not subscriptable"),
            Some(SAVE_TYPE_ERROR),
        );
        assert_eq!(
            fault.as_deref(),
            Some("TypeError: 'NoneType' object is not subscriptable (in image_records_sqlite.py)")
        );
        let windows = SAVE_TYPE_ERROR.replace('/', "\\");
        assert!(server_fault(Some("TypeError"), None, Some(&windows)).is_some());
        assert!(server_fault(Some("ImageFileSaveException"), Some("disk full"), None).is_some());
        assert!(server_fault(Some("OperationalError"), Some("database is locked"), None).is_some());

        // The same error type raised by a node is the workflow's.
        assert_eq!(
            server_fault(
                Some("TypeError"),
                Some("'NoneType' object is not subscriptable"),
                Some(NODE_ERROR)
            ),
            None
        );
        for (t, m) in [
            ("OutOfMemoryError", "CUDA out of memory"),
            ("ValueError", "bad"),
            ("OperationalError", "no such table: images"),
            ("UnknownModelException", "model not found"),
        ] {
            assert_eq!(server_fault(Some(t), Some(m), None), None, "{t}");
        }
        assert_eq!(server_fault(None, None, Some(SAVE_TYPE_ERROR)), None);
    }
}
