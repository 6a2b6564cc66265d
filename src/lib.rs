//! docker-credential-acr: Azure Container Registry credentials from an Azure identity.
//!
//! `get` reads a registry on stdin and, if it is an ACR login server this helper serves, returns
//! an ACR refresh token: from the cache when fresh, otherwise by getting an AAD token from the
//! machine's identity source and exchanging it at the registry. Everything else (store, erase,
//! list, version) is forgiving, so that `docker login`/`logout` never break.
//!
//! Modules, lowest layer first (each uses only modules of lower layers; a test keeps it so):
//! `secret`, `jwt`, `env`, `hosts`, `files` → `identity` → `config`, `http`, `clients` → `error` →
//! `context`, `protocol` → `token` → `acr` → `cache` → `kubelet`, `flow` → `doctor`, `configure`
//! → `cli` → `commands`, `front`, `output`. See docs/architecture.md.
//!
//! Two programs use it: `docker-credential-acr` (`src/bin/docker-credential-acr.rs`, the
//! front: a warm `get` and a host not served, see [`front`]) and `docker-credential-acr-full`
//! (`src/main.rs`, everything). Only [`output`] and the log write to stdout and stderr; the
//! rest of the library writes into the `Write` it is handed.

#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod acr;
pub mod cache;
pub mod cli;
pub mod clients;
pub mod commands;
pub mod config;
pub mod configure;
pub mod context;
pub mod doctor;
pub mod env;
pub mod error;
pub mod files;
pub mod flow;
pub mod front;
pub mod hosts;
pub mod http;
pub mod identity;
pub mod jwt;
pub mod kubelet;
pub mod output;
pub mod protocol;
pub mod secret;
pub mod token;

pub use context::Context;
pub use env::Env;
pub use error::Error;

#[cfg(test)]
mod layering;
