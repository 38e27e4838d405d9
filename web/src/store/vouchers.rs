//! GST vouchers as issued (never changed afterwards), the counters that number them, and
//! customers' billing profiles (copied into each voucher when it is issued).

use sea_orm::ActiveValue::Set;
use sea_orm::{
    ConnectionTrait, QueryOrder,
    entity::prelude::*,
    sea_query::{Expr, ExprTrait, OnConflict},
};

use super::{FirstRow, StoreError, StoreResult, Tx, now_micros};

pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_vouchers")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub kind: String,
        pub number: String,
        pub financial_year: i64,
        pub sequence: i64,
        pub topup_id: i64,
        pub user_id: i64,
        pub payment_id: String,
        pub refund_id: Option<String>,
        pub receipt_voucher_id: Option<i64>,
        pub amount_paise: i64,
        pub taxable_paise: i64,
        pub cgst_paise: i64,
        pub sgst_paise: i64,
        pub igst_paise: i64,
        pub rate_bps: i64,
        pub place_of_supply: i64,
        pub sac: String,
        pub seller_name: String,
        pub seller_address: String,
        pub seller_gstin: String,
        pub buyer_name: String,
        pub buyer_address: String,
        pub buyer_gstin: Option<String>,
        pub issued_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod counters {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_voucher_counters")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub kind: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub financial_year: i64,
        pub last: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod profiles {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_billing_profiles")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: i64,
        pub legal_name: String,
        pub address: String,
        pub state_code: i64,
        pub gstin: Option<String>,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Column, Entity};

/// Which series a voucher belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoucherKind {
    /// For money received (rule 50).
    Receipt,
    /// For an advance refunded (rule 51).
    Refund,
}

impl VoucherKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VoucherKind::Receipt => "receipt",
            VoucherKind::Refund => "refund",
        }
    }

    fn parse(s: &str) -> StoreResult<Self> {
        match s {
            "receipt" => Ok(VoucherKind::Receipt),
            "refund" => Ok(VoucherKind::Refund),
            other => Err(StoreError::Db(DbErr::Custom(format!(
                "a voucher has the unknown kind {other:?}"
            )))),
        }
    }
}

/// A voucher as issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voucher {
    pub id: i64,
    pub kind: VoucherKind,
    pub number: String,
    pub topup_id: i64,
    pub user_id: i64,
    pub payment_id: String,
    pub refund_id: Option<String>,
    pub receipt_voucher_id: Option<i64>,
    pub amount_paise: i64,
    pub taxable_paise: i64,
    pub cgst_paise: i64,
    pub sgst_paise: i64,
    pub igst_paise: i64,
    pub rate_bps: i64,
    pub place_of_supply: i64,
    pub sac: String,
    pub seller_name: String,
    pub seller_address: String,
    pub seller_gstin: String,
    pub buyer_name: String,
    pub buyer_address: String,
    pub buyer_gstin: Option<String>,
    pub issued_at: chrono::DateTime<chrono::Utc>,
}

impl TryFrom<entity::Model> for Voucher {
    type Error = StoreError;
    fn try_from(m: entity::Model) -> StoreResult<Voucher> {
        Ok(Voucher {
            kind: VoucherKind::parse(&m.kind)?,
            id: m.id,
            number: m.number,
            topup_id: m.topup_id,
            user_id: m.user_id,
            payment_id: m.payment_id,
            refund_id: m.refund_id,
            receipt_voucher_id: m.receipt_voucher_id,
            amount_paise: m.amount_paise,
            taxable_paise: m.taxable_paise,
            cgst_paise: m.cgst_paise,
            sgst_paise: m.sgst_paise,
            igst_paise: m.igst_paise,
            rate_bps: m.rate_bps,
            place_of_supply: m.place_of_supply,
            sac: m.sac,
            seller_name: m.seller_name,
            seller_address: m.seller_address,
            seller_gstin: m.seller_gstin,
            buyer_name: m.buyer_name,
            buyer_address: m.buyer_address,
            buyer_gstin: m.buyer_gstin,
            issued_at: chrono::DateTime::from_timestamp_micros(m.issued_at).unwrap_or_default(),
        })
    }
}

/// Takes the next number of a series in a financial year: one upsert, held until the
/// transaction ends, so numbers have no gaps (a rollback gives the number back) and no
/// duplicates (a second transaction waits for the first).
pub async fn next_sequence(
    tx: &Tx<'_>,
    kind: VoucherKind,
    financial_year: i32,
) -> StoreResult<i64> {
    let row = counters::Entity::insert(counters::ActiveModel {
        kind: Set(kind.as_str().to_string()),
        financial_year: Set(i64::from(financial_year)),
        last: Set(1),
    })
    .on_conflict(
        OnConflict::columns([counters::Column::Kind, counters::Column::FinancialYear])
            .value(
                counters::Column::Last,
                Expr::col((counters::Entity, counters::Column::Last)).add(1),
            )
            .to_owned(),
    )
    .exec_with_returning(tx)
    .await?;
    Ok(row.last)
}

/// What a new voucher says.
pub struct NewVoucher<'a> {
    pub kind: VoucherKind,
    pub number: &'a str,
    pub financial_year: i32,
    pub sequence: i64,
    pub topup_id: i64,
    pub user_id: i64,
    pub payment_id: &'a str,
    /// A refund voucher's refund, and the receipt voucher it refunds against.
    pub refund_id: Option<&'a str>,
    pub receipt_voucher_id: Option<i64>,
    pub amount_paise: i64,
    pub taxable_paise: i64,
    pub cgst_paise: i64,
    pub sgst_paise: i64,
    pub igst_paise: i64,
    pub rate_bps: i64,
    pub place_of_supply: u32,
    pub sac: &'a str,
    pub seller_name: &'a str,
    pub seller_address: &'a str,
    pub seller_gstin: &'a str,
    pub buyer_name: &'a str,
    pub buyer_address: &'a str,
    pub buyer_gstin: Option<&'a str>,
}

/// Issues a voucher; returns its id.
pub async fn issue(tx: &Tx<'_>, new: NewVoucher<'_>) -> StoreResult<i64> {
    let inserted = Entity::insert(ActiveModel {
        kind: Set(new.kind.as_str().to_string()),
        number: Set(new.number.to_string()),
        financial_year: Set(i64::from(new.financial_year)),
        sequence: Set(new.sequence),
        topup_id: Set(new.topup_id),
        user_id: Set(new.user_id),
        payment_id: Set(new.payment_id.to_string()),
        refund_id: Set(new.refund_id.map(str::to_string)),
        receipt_voucher_id: Set(new.receipt_voucher_id),
        amount_paise: Set(new.amount_paise),
        taxable_paise: Set(new.taxable_paise),
        cgst_paise: Set(new.cgst_paise),
        sgst_paise: Set(new.sgst_paise),
        igst_paise: Set(new.igst_paise),
        rate_bps: Set(new.rate_bps),
        place_of_supply: Set(i64::from(new.place_of_supply)),
        sac: Set(new.sac.to_string()),
        seller_name: Set(new.seller_name.to_string()),
        seller_address: Set(new.seller_address.to_string()),
        seller_gstin: Set(new.seller_gstin.to_string()),
        buyer_name: Set(new.buyer_name.to_string()),
        buyer_address: Set(new.buyer_address.to_string()),
        buyer_gstin: Set(new.buyer_gstin.map(str::to_string)),
        issued_at: Set(now_micros()),
        ..Default::default()
    })
    .exec(tx)
    .await?;
    Ok(inserted.last_insert_id)
}

/// The receipt voucher of a top-up, if issued.
pub async fn receipt_of_topup<C: ConnectionTrait>(
    conn: &C,
    topup_id: i64,
) -> StoreResult<Option<Voucher>> {
    Entity::find()
        .filter(Column::TopupId.eq(topup_id))
        .filter(Column::Kind.eq(VoucherKind::Receipt.as_str()))
        .first_row(conn)
        .await?
        .map(Voucher::try_from)
        .transpose()
}

/// Which of these top-ups have a receipt voucher (those credited before vouchers existed have
/// none).
pub async fn topups_with_receipts<C: ConnectionTrait>(
    conn: &C,
    topup_ids: &[i64],
) -> StoreResult<std::collections::BTreeSet<i64>> {
    use sea_orm::QuerySelect;
    if topup_ids.is_empty() {
        return Ok(Default::default());
    }
    Ok(Entity::find()
        .select_only()
        .column(Column::TopupId)
        .filter(Column::TopupId.is_in(topup_ids.iter().copied()))
        .filter(Column::Kind.eq(VoucherKind::Receipt.as_str()))
        .into_tuple::<i64>()
        .all(conn)
        .await?
        .into_iter()
        .collect())
}

/// The refund voucher of a refund, if issued.
pub async fn of_refund<C: ConnectionTrait>(
    conn: &C,
    refund_id: &str,
) -> StoreResult<Option<Voucher>> {
    Entity::find()
        .filter(Column::RefundId.eq(refund_id))
        .first_row(conn)
        .await?
        .map(Voucher::try_from)
        .transpose()
}

/// A voucher by id.
pub async fn find<C: ConnectionTrait>(conn: &C, id: i64) -> StoreResult<Option<Voucher>> {
    Entity::find_by_id(id)
        .first_row(conn)
        .await?
        .map(Voucher::try_from)
        .transpose()
}

/// A top-up's vouchers (its receipt, then its refunds), oldest first.
pub async fn of_topup<C: ConnectionTrait>(conn: &C, topup_id: i64) -> StoreResult<Vec<Voucher>> {
    Entity::find()
        .filter(Column::TopupId.eq(topup_id))
        .order_by_asc(Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(Voucher::try_from)
        .collect()
}

/// Vouchers issued in `[from, to)` (Unix microseconds), receipts then refunds, each in number
/// order: the month an accountant asks for.
pub async fn issued_between<C: ConnectionTrait>(
    conn: &C,
    from: i64,
    to: i64,
) -> StoreResult<Vec<Voucher>> {
    Entity::find()
        .filter(Column::IssuedAt.gte(from))
        .filter(Column::IssuedAt.lt(to))
        .order_by_asc(Column::Kind)
        .order_by_asc(Column::FinancialYear)
        .order_by_asc(Column::Sequence)
        .all(conn)
        .await?
        .into_iter()
        .map(Voucher::try_from)
        .collect()
}

/// An account's vouchers, oldest first.
pub async fn of_user<C: ConnectionTrait>(conn: &C, user_id: i64) -> StoreResult<Vec<Voucher>> {
    Entity::find()
        .filter(Column::UserId.eq(user_id))
        .order_by_asc(Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(Voucher::try_from)
        .collect()
}

/// A customer's billing profile, as vouchers copy it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingProfile {
    pub legal_name: String,
    pub address: String,
    pub state_code: u32,
    pub gstin: Option<String>,
}

pub async fn profile_of<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
) -> StoreResult<Option<BillingProfile>> {
    Ok(profiles::Entity::find_by_id(user_id)
        .first_row(conn)
        .await?
        .map(|m| BillingProfile {
            legal_name: m.legal_name,
            address: m.address,
            state_code: u32::try_from(m.state_code).unwrap_or(0),
            gstin: m.gstin,
        }))
}

/// Saves a customer's billing profile (one per account); vouchers issued from now on copy it.
pub async fn save_profile(
    writer: &impl super::Writer,
    user_id: i64,
    profile: &BillingProfile,
) -> StoreResult<()> {
    profiles::Entity::insert(profiles::ActiveModel {
        user_id: Set(user_id),
        legal_name: Set(profile.legal_name.clone()),
        address: Set(profile.address.clone()),
        state_code: Set(i64::from(profile.state_code)),
        gstin: Set(profile.gstin.clone()),
        updated_at: Set(now_micros()),
    })
    .on_conflict(
        OnConflict::column(profiles::Column::UserId)
            .update_columns([
                profiles::Column::LegalName,
                profiles::Column::Address,
                profiles::Column::StateCode,
                profiles::Column::Gstin,
                profiles::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(writer)
    .await?;
    Ok(())
}
