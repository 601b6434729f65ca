//! The client against a real InvokeAI server.
