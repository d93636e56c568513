//! Roles and what each may do. The matrix lives here, in one table, so a review reads it whole.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A principal's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including keys, users and configuration.
    Admin,
    /// Growth work: insights, segments, goals, pricing, SQL (masked).
    OpsManager,
    /// Risk work: decisions, rules, cases, SQL; may read C2 in clear with a purpose.
    RiskAnalyst,
    /// Models and analysis: insights, SQL (masked), model promotion.
    DataScientist,
    /// Compliance: reads, audit log, personal data in clear with a purpose, exports.
    ComplianceOfficer,
    /// Read-only, and only the audit log.
    Auditor,
    /// A partner's application on the open API: ingestion and decisions.
    PartnerApp,
}

/// Every role, in the order help texts list them.
pub const ROLES: [Role; 7] =
    [Role::Admin, Role::OpsManager, Role::RiskAnalyst, Role::DataScientist, Role::ComplianceOfficer, Role::Auditor, Role::PartnerApp];

impl Role {
    /// Its name on the command line, in keys and in the audit log.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::OpsManager => "ops_manager",
            Role::RiskAnalyst => "risk_analyst",
            Role::DataScientist => "data_scientist",
            Role::ComplianceOfficer => "compliance_officer",
            Role::Auditor => "auditor",
            Role::PartnerApp => "partner_app",
        }
    }

    /// What the role may do.
    pub fn permissions(self) -> impl Iterator<Item = Permission> {
        PERMISSIONS.into_iter().filter(move |p| self.allows(*p))
    }

    /// Whether the role may do `p`.
    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::OpsManager => matches!(p, Ingest | ReadInsights | RunSql | EditGrowth | ReadCases | ReadUsers),
            Role::RiskAnalyst => {
                matches!(p, Decide | ReadInsights | RunSql | PublishRules | ReadCases | ChangeCases | ReadUsers | ReadPersonalClear)
            }
            Role::DataScientist => matches!(p, ReadInsights | RunSql | PromoteModels),
            Role::ComplianceOfficer => {
                matches!(p, ReadInsights | RunSql | ReadCases | ReadUsers | ReadAudit | ReadPersonalClear | ExportPersonal | ErasePersonal)
            }
            Role::Auditor => matches!(p, ReadAudit),
            Role::PartnerApp => matches!(p, Ingest | Decide),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A role name that is not one.
#[derive(Debug, Clone, thiserror::Error)]
#[error("'{0}' is not a role (roles: admin, ops_manager, risk_analyst, data_scientist, compliance_officer, auditor, partner_app)")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ROLES.into_iter().find(|r| r.name() == s).ok_or_else(|| UnknownRole(s.to_string()))
    }
}

/// One thing a principal may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Send events.
    Ingest,
    /// Ask for a risk decision.
    Decide,
    /// Read insights, segments, goals, models, offers, the schema and the API description.
    ReadInsights,
    /// Run SQL.
    RunSql,
    /// Save segments and goals, compute offers.
    EditGrowth,
    /// Publish or roll back rulesets.
    PublishRules,
    /// Promote or roll back models.
    PromoteModels,
    /// Read fraud cases.
    ReadCases,
    /// Assign, comment on and resolve fraud cases.
    ChangeCases,
    /// Read a user's live profile.
    ReadUsers,
    /// See C2 fields in clear (with a stated purpose, audited).
    ReadPersonalClear,
    /// Export personal data.
    ExportPersonal,
    /// Erase a user's personal data (crypto-shredding their data key).
    ErasePersonal,
    /// Read the audit log.
    ReadAudit,
    /// Create, rotate and revoke keys; create users.
    ManageAccess,
    /// Change the schema, compact, and other operator actions.
    Operate,
}

/// Every permission, in the order lists show them.
pub const PERMISSIONS: [Permission; 16] = [
    Permission::Ingest,
    Permission::Decide,
    Permission::ReadInsights,
    Permission::RunSql,
    Permission::EditGrowth,
    Permission::PublishRules,
    Permission::PromoteModels,
    Permission::ReadCases,
    Permission::ChangeCases,
    Permission::ReadUsers,
    Permission::ReadPersonalClear,
    Permission::ExportPersonal,
    Permission::ErasePersonal,
    Permission::ReadAudit,
    Permission::ManageAccess,
    Permission::Operate,
];

impl Permission {
    /// Its name in errors and the audit log.
    pub fn name(self) -> &'static str {
        match self {
            Permission::Ingest => "ingest",
            Permission::Decide => "decide",
            Permission::ReadInsights => "read_insights",
            Permission::RunSql => "run_sql",
            Permission::EditGrowth => "edit_growth",
            Permission::PublishRules => "publish_rules",
            Permission::PromoteModels => "promote_models",
            Permission::ReadCases => "read_cases",
            Permission::ChangeCases => "change_cases",
            Permission::ReadUsers => "read_users",
            Permission::ReadPersonalClear => "read_personal_clear",
            Permission::ExportPersonal => "export_personal",
            Permission::ErasePersonal => "erase_personal",
            Permission::ReadAudit => "read_audit",
            Permission::ManageAccess => "manage_access",
            Permission::Operate => "operate",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip_and_unknown_names_list_the_roles() {
        for r in ROLES {
            assert_eq!(r.name().parse::<Role>().unwrap(), r);
        }
        let err = "root".parse::<Role>().unwrap_err().to_string();
        assert!(err.contains("'root' is not a role") && err.contains("partner_app"), "{err}");
    }

    #[test]
    fn the_auditor_reads_the_audit_log_and_nothing_else() {
        assert!(Role::Auditor.allows(Permission::ReadAudit));
        assert!(!Role::Auditor.allows(Permission::RunSql));
        assert!(!Role::Auditor.allows(Permission::ReadInsights));
        assert!(!Role::PartnerApp.allows(Permission::RunSql));
        assert!(!Role::DataScientist.allows(Permission::ReadPersonalClear));
        assert!(Role::ComplianceOfficer.allows(Permission::ReadPersonalClear));
    }
}
