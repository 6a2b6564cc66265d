//! Kubernetes workload identity (AKS and self-managed clusters): the projected service-account
//! token in `AZURE_FEDERATED_TOKEN_FILE` is the client assertion of an Entra ID application.

use std::path::PathBuf;

use crate::context::Context;
use crate::error::Error;
use crate::identity::Identity;
use crate::secret::Secret;
use crate::token::entra::{self, Credential, Grant};
use crate::token::{self, AadToken, Detected, Detection, Scope, TokenSource};

/// What to check when Entra ID refuses a federated token.
pub const FEDERATION_ADVICE: &str = "check the federated identity credential of that application for this service account (issuer, subject system:serviceaccount:<namespace>:<name>, audience api://AzureADTokenExchange) and AZURE_TENANT_ID";
const HEADLINE: &str = "Entra ID cannot be reached for workload identity";
const ADVICE: &str = "check the network path to AZURE_AUTHORITY_HOST (default login.microsoftonline.com) and HTTPS_PROXY/NO_PROXY";

#[derive(Debug)]
pub struct Workload {
    authority: String,
    tenant: String,
    client_id: String,
    token_file: PathBuf,
}

/// Configured as `workload_identity`, or `AZURE_FEDERATED_TOKEN_FILE` with `AZURE_CLIENT_ID` and
/// `AZURE_TENANT_ID`. The file alone, without the other two, is a misconfiguration, not "not
/// here".
pub fn detect(ctx: &Context, identity: &Identity, scope: Scope) -> Result<Detection, Error> {
    let env = &ctx.env;
    let authority = entra::authority(ctx);
    match (scope, identity) {
        (
            Scope::Named,
            Identity::WorkloadIdentity {
                tenant_id,
                client_id,
                token_file,
            },
        ) => {
            return Ok(Detection::Here(Detected::new(
                Workload {
                    authority,
                    tenant: tenant_id.clone(),
                    client_id: client_id.clone(),
                    token_file: token_file.clone(),
                },
                "the configuration names this workload identity",
            )));
        }
        (Scope::Named, _) => {
            return Ok(Detection::NotHere(format!(
                "the configuration names the {identity}"
            )));
        }
        _ => {}
    }
    let Some(file) = env.get("AZURE_FEDERATED_TOKEN_FILE") else {
        return Ok(Detection::NotHere(
            "AZURE_FEDERATED_TOKEN_FILE is not set".into(),
        ));
    };
    let (Some(client_id), Some(tenant)) = (env.get("AZURE_CLIENT_ID"), env.get("AZURE_TENANT_ID"))
    else {
        let missing: Vec<&str> = ["AZURE_CLIENT_ID", "AZURE_TENANT_ID"]
            .into_iter()
            .filter(|v| env.get(v).is_none())
            .collect();
        return Err(Error::Environment {
            name: "AZURE_FEDERATED_TOKEN_FILE",
            why: format!(
                "it is set, but {} not; workload identity needs AZURE_CLIENT_ID and AZURE_TENANT_ID too (the workload identity webhook sets all three)",
                missing.join(" and ")
            ),
        });
    };
    Ok(Detection::Here(Detected::new(
        Workload {
            authority,
            tenant: tenant.into(),
            client_id: client_id.into(),
            token_file: file.into(),
        },
        "AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID and AZURE_TENANT_ID are set",
    )))
}

impl TokenSource for Workload {
    fn name(&self) -> &'static str {
        "Entra ID (workload identity)"
    }

    fn headline(&self) -> &'static str {
        HEADLINE
    }

    fn advice(&self) -> &'static str {
        ADVICE
    }

    fn endpoint(&self) -> String {
        entra::token_url(&self.authority, &self.tenant)
    }

    fn fetch(&self, ctx: &Context, identity: &Identity) -> Result<AadToken, Error> {
        let client_id = match identity {
            Identity::ClientId(id) => id.as_str(),
            Identity::System | Identity::WorkloadIdentity { .. } => self.client_id.as_str(),
            other => {
                return Err(Error::IdentitySource {
                    via: self.name(),
                    why: format!(
                        "workload identity selects an identity by client_id only, but the {other} was configured"
                    ),
                });
            }
        };
        let at = token::at(
            self,
            format!("workload identity with client_id {client_id}"),
        );
        // Re-read on every use: the kubelet rotates the projected token.
        let file = self.token_file.display();
        let assertion = std::fs::read_to_string(&self.token_file).map_err(|e| {
            at.unusable(format!(
                "cannot read AZURE_FEDERATED_TOKEN_FILE {file} ({e}); is the service account token projected into this pod?"
            ))
        })?;
        let assertion = Secret::new(assertion.trim());
        if assertion.expose().is_empty() {
            return Err(at.unusable(format!("AZURE_FEDERATED_TOKEN_FILE {file} is empty")));
        }
        let grant = Grant {
            authority: &self.authority,
            tenant: &self.tenant,
            client_id,
            credential: Credential::Assertion(&assertion),
        };
        entra::request(ctx, &at, &grant, FEDERATION_ADVICE)
    }
}
