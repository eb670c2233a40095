//! PEP 3333 in the embedded interpreter.
pub mod call;
pub mod environ;
pub mod errors;
pub mod exchange;
pub mod file_wrapper;
pub mod input;
pub mod interpreter;
pub mod scripts;
pub mod start_response;
