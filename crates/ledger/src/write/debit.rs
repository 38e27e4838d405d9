//! A single debit (usage, or an adjustment against the customer): claimed and withdrawn in one
//! round trip (`claim_and_withdraw`); its lots are drawn later (`draw`).

use crate::{
    db::Tx,
    error::LedgerResult,
    model::{Debit, Receipt},
    write::{
        claim_and_withdraw::{self, Claim},
        claims::{
            SystemIds, debit_fingerprint, debit_transfer, insufficient, resolve_unclaimed,
            unclaim_uncounted,
        },
    },
};

pub(crate) async fn debit(
    tx: &Tx,
    sys: &SystemIds,
    req: &Debit,
    now: i64,
) -> LedgerResult<Receipt> {
    let kind = req.kind.transfer_kind();
    let sink = sys.get(kind.system_account())?;
    let fingerprint = debit_fingerprint(req);
    let amount = req.amount.get();
    let trip = claim_and_withdraw::debit(
        tx,
        &Claim {
            key: req.key.as_str(),
            fingerprint: &fingerprint,
            kind,
            wallet: req.wallet,
            sink,
            amount,
            reference: &req.reference,
            memo: &req.memo,
            now,
        },
    )
    .await?;
    let Some(id) = trip.transfer else {
        return resolve_unclaimed(tx, req.key.as_str(), &fingerprint, req.wallet).await;
    };
    if !trip.withdrawn {
        let refusal = insufficient(tx, req.wallet, amount).await?;
        unclaim_uncounted(tx, id).await?;
        return Err(refusal);
    }
    Ok(Receipt {
        transfer: debit_transfer(req, id, sink, now),
        replayed: false,
    })
}
