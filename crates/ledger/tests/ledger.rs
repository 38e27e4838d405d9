//! The ledger's behaviour, one scenario per test, each run on SQLite and on PostgreSQL.

mod common;

use chrono::{Duration, Utc};
use common::{assert_audit_clean, credits, key};
use ledger::{
    AccountId, Balance, Credit, CreditKind, Debit, DebitKind, HistoryQuery, Ledger, LedgerError,
    LotSource, Op, OpOutcome, ReservationStatus, Reserve, Settle, SystemAccount, TransferKind,
};

fn purchase(wallet: AccountId, amount: i64, payment: &str) -> Credit {
    Credit {
        wallet,
        amount: credits(amount),
        kind: CreditKind::Purchase,
        key: key(format!("topup:{payment}")),
        reference: Some(payment.to_string()),
        memo: None,
        expires_at: None,
    }
}

fn grant(wallet: AccountId, amount: i64, k: &str, expires_in_days: Option<i64>) -> Credit {
    Credit {
        wallet,
        amount: credits(amount),
        kind: CreditKind::Grant,
        key: key(k),
        reference: None,
        memo: Some("welcome bonus".into()),
        expires_at: expires_in_days.map(|d| Utc::now() + Duration::days(d)),
    }
}

fn send_email(wallet: AccountId, amount: i64, k: &str) -> Debit {
    Debit {
        wallet,
        amount: credits(amount),
        kind: DebitKind::UsageEmail,
        key: key(k),
        reference: Some(format!("batch-{k}")),
        memo: None,
    }
}

fn hold(wallet: AccountId, amount: i64, k: &str, minutes: i64) -> Reserve {
    Reserve {
        wallet,
        amount: credits(amount),
        kind: DebitKind::UsageSms,
        key: key(k),
        reference: Some(format!("campaign-{k}")),
        expires_at: Utc::now() + Duration::minutes(minutes),
    }
}

async fn balance(ledger: &Ledger, wallet: AccountId) -> Balance {
    ledger.balance(wallet).await.expect("balance")
}

on_both_backends!(
    a_purchase_credits_the_wallet_once,
    a_reused_key_with_other_content_is_a_conflict,
    debits_never_overdraw,
    lots_are_spent_soonest_expiry_first_promotional_first,
    debits_draw_from_the_lots_of_their_time,
    a_debit_larger_than_many_small_lots_draws_them_all_in_order,
    expired_lots_move_to_the_expiry_account,
    reservations_hold_settle_and_release,
    reservations_expire,
    batches_give_each_item_its_own_outcome,
    an_all_or_nothing_batch_commits_nothing_when_one_item_is_refused,
    history_is_newest_first_paginated_and_filterable,
    unknown_accounts_and_bad_requests_are_typed_errors,
    the_database_itself_refuses_a_negative_balance,
    wallets_are_opened_once_per_owner,
    a_transaction_can_span_several_operations,
    transactions_retry_transient_failures,
    reads_never_write_and_transactions_do_not_nest,
    an_autocommit_write_is_one_statement,
    a_retried_reservation_answers_the_original,
);

async fn a_purchase_credits_the_wallet_once(ledger: Ledger) {
    let wallet = ledger.open_wallet("user:1").await.expect("wallet");
    let first = ledger
        .credit(purchase(wallet, 1_000, "pay_29QQoUBi66xm2f"))
        .await
        .expect("credit");
    assert!(!first.replayed);
    assert_eq!(first.transfer.kind, TransferKind::Purchase);
    assert_eq!(first.transfer.signed_amount(), 1_000);

    let again = ledger
        .credit(purchase(wallet, 1_000, "pay_29QQoUBi66xm2f"))
        .await
        .expect("replay");
    assert!(again.replayed);
    assert_eq!(again.transfer.id, first.transfer.id);
    assert_eq!(
        balance(&ledger, wallet).await,
        Balance {
            available: 1_000,
            reserved: 0
        }
    );

    let lots = ledger.lots(wallet).await.expect("lots");
    assert_eq!(lots.len(), 1);
    assert_eq!(lots[0].source, LotSource::Paid);
    assert_eq!(
        lots[0].payment_reference.as_deref(),
        Some("pay_29QQoUBi66xm2f")
    );
    assert_eq!(
        ledger
            .system_balance(SystemAccount::RazorpayPurchases)
            .await
            .expect("system balance"),
        -1_000
    );
    assert_audit_clean(&ledger).await;
}

async fn a_reused_key_with_other_content_is_a_conflict(ledger: Ledger) {
    let wallet = ledger.open_wallet("user:1").await.expect("wallet");
    ledger
        .credit(purchase(wallet, 500, "pay_A"))
        .await
        .expect("credit");
    let mut different = purchase(wallet, 600, "pay_A");
    different.key = key("topup:pay_A");
    let err = ledger.credit(different).await.expect_err("conflict");
    assert!(
        matches!(err, LedgerError::IdempotencyConflict { .. }),
        "{err:?}"
    );

    ledger
        .debit(send_email(wallet, 100, "send-1"))
        .await
        .expect("debit");
    let err = ledger
        .debit(send_email(wallet, 101, "send-1"))
        .await
        .expect_err("conflict");
    assert!(
        matches!(err, LedgerError::IdempotencyConflict { .. }),
        "{err:?}"
    );
    // A key used by a debit can't be reused by a credit either.
    let mut credit_with_debit_key = purchase(wallet, 100, "pay_B");
    credit_with_debit_key.key = key("send-1");
    let err = ledger
        .credit(credit_with_debit_key)
        .await
        .expect_err("conflict");
    assert!(
        matches!(err, LedgerError::IdempotencyConflict { .. }),
        "{err:?}"
    );
    assert_eq!(balance(&ledger, wallet).await.available, 400);
    assert_audit_clean(&ledger).await;
}

async fn debits_never_overdraw(ledger: Ledger) {
    let wallet = ledger.open_wallet("user:1").await.expect("wallet");
    ledger
        .credit(purchase(wallet, 100, "pay_A"))
        .await
        .expect("credit");
    let err = ledger
        .debit(send_email(wallet, 101, "too-much"))
        .await
        .expect_err("refused");
    assert!(
        matches!(
            err,
            LedgerError::InsufficientCredits {
                available: 100,
                required: 101
            }
        ),
        "{err:?}"
    );
    // The refused key was not consumed: once the wallet can afford it, the same key works.
    ledger
        .credit(purchase(wallet, 1, "pay_B"))
        .await
        .expect("credit");
    ledger
        .debit(send_email(wallet, 101, "too-much"))
        .await
        .expect("now affordable");
    assert_eq!(balance(&ledger, wallet).await.available, 0);
    let err = ledger
        .debit(send_email(wallet, 1, "one-more"))
        .await
        .expect_err("empty");
    assert!(matches!(
        err,
        LedgerError::InsufficientCredits {
            available: 0,
            required: 1
        }
    ));
    assert_audit_clean(&ledger).await;
}

async fn lots_are_spent_soonest_expiry_first_promotional_first(ledger: Ledger) {
    let wallet = ledger.open_wallet("user:1").await.expect("wallet");
    let paid = ledger
        .credit(purchase(wallet, 100, "pay_A"))
        .await
        .expect("paid");
    let promo_never = ledger
        .credit(grant(wallet, 50, "grant-never", None))
        .await
        .expect("promo");
    let promo_soon = ledger
        .credit(grant(wallet, 30, "grant-soon", Some(7)))
        .await
        .expect("soon");

    // 30 from the lot expiring soonest, then 50 promotional before paid at equal (no) expiry.
    let debit = ledger
        .debit(send_email(wallet, 100, "send-1"))
        .await
        .expect("debit");
    let allocations = ledger
        .allocations(debit.transfer.id)
        .await
        .expect("allocations");
    let by_lot: Vec<(LotSource, i64)> = allocations.iter().map(|a| (a.source, a.amount)).collect();
    assert_eq!(
        by_lot,
        vec![
            (LotSource::Paid, 20),
            (LotSource::Promotional, 50),
            (LotSource::Promotional, 30)
        ]
    );
    let lots = ledger.lots(wallet).await.expect("lots");
    let remaining = |transfer| {
        lots.iter()
            .find(|l| l.transfer == transfer)
            .map(|l| l.remaining)
    };
    assert_eq!(remaining(promo_soon.transfer.id), Some(0));
    assert_eq!(remaining(promo_never.transfer.id), Some(0));
    assert_eq!(remaining(paid.transfer.id), Some(80));
    assert_eq!(allocations.iter().map(|a| a.amount).sum::<i64>(), 100);
    assert_audit_clean(&ledger).await;
}

/// Plain debits take their credits off the balance at once and are drawn from lots after the
/// fact; the draw still follows the lots the wallet had when each debit was made.
/// Many small top-ups, then spending that needs more lots than the ledger reads at first (it reads
/// a wallet's first lots from the spending-order index): a batch, a single debit and a
/// reservation each take every lot they need, soonest to expire first, and nothing else.
async fn a_debit_larger_than_many_small_lots_draws_them_all_in_order(ledger: Ledger) {
    let wallet = ledger.open_wallet("user:1").await.expect("wallet");
    for n in 0..40 {
        ledger
            .credit(purchase(wallet, 10, &format!("pay_{n}")))
            .await
            .expect("paid");
    }
    // A promotion expiring soonest is spent first, though it arrived last.
    ledger
        .credit(grant(wallet, 5, "grant-1", Some(1)))
        .await
        .expect("promo");
    let batch: Vec<Op> = [(101, "send-1"), (100, "send-2")]
        .into_iter()
        .map(|(amount, k)| Op::Debit(send_email(wallet, amount, k)))
        .collect();
    ledger.submit(&batch).await.expect("batch");
    ledger
        .debit(send_email(wallet, 12, "send-3"))
        .await
        .expect("debit");
    ledger
        .reserve(hold(wallet, 165, "hold-1", 10))
        .await
        .expect("hold");
    let lots: Vec<(LotSource, i64, i64)> = ledger
        .lots(wallet)
        .await
        .expect("lots")
        .iter()
        .map(|l| (l.source, l.remaining, l.held))
        .collect();
    // Oldest first: the batch's 201 take the promotion and 196 of the paid lots, the debit 12
    // more, the reservation holds the next 165.
    let mut expected = vec![(LotSource::Paid, 0, 0); 20];
    expected.push((LotSource::Paid, 0, 2));
    expected.extend(vec![(LotSource::Paid, 0, 10); 16]);
    expected.push((LotSource::Paid, 7, 3));
    expected.extend(vec![(LotSource::Paid, 10, 0); 2]);
    expected.push((LotSource::Promotional, 0, 0));
    assert_eq!(lots, expected);
    assert_eq!(balance(&ledger, wallet).await.available, 27);
    assert_audit_clean(&ledger).await;
}

async fn debits_draw_from_the_lots_of_their_time(ledger: Ledger) {
    let wallet = ledger.open_wallet("user:1").await.expect("wallet");
    ledger
        .credit(purchase(wallet, 100, "pay_A"))
        .await
        .expect("paid");
    let first = ledger
        .debit(send_email(wallet, 30, "send-1"))
        .await
        .expect("debit");
    ledger
        .debit(send_email(wallet, 20, "send-2"))
        .await
        .expect("debit");
    assert_eq!(balance(&ledger, wallet).await.available, 50);
    // Not drawn yet, and the audit accounts for it.
    assert_audit_clean(&ledger).await;

    // A promotional lot that expires soonest arrives: the two debits were made before it, so
    // they come out of the paid lot, not out of the promotion.
    ledger
        .credit(grant(wallet, 40, "grant-1", Some(1)))
        .await
        .expect("promo");
    let third = ledger
        .debit(send_email(wallet, 10, "send-3"))
        .await
        .expect("debit");
    assert_audit_clean(&ledger).await;
    assert_eq!(ledger.draw_pending().await.expect("sweep"), 1);
    assert_eq!(ledger.draw_pending().await.expect("sweep again"), 0);
    let lots: Vec<(LotSource, i64)> = ledger
        .lots(wallet)
        .await
        .expect("lots")
        .iter()
        .map(|l| (l.source, l.remaining))
        .collect();
    assert_eq!(
        lots,
        vec![(LotSource::Paid, 50), (LotSource::Promotional, 30)]
    );
    let paid_by = |allocations: Vec<ledger::Allocation>| -> Vec<(LotSource, i64)> {
        allocations.iter().map(|a| (a.source, a.amount)).collect()
    };
    assert_eq!(
        paid_by(ledger.allocations(first.transfer.id).await.expect("a")),
        vec![(LotSource::Paid, 30)]
    );
    assert_eq!(
        paid_by(ledger.allocations(third.transfer.id).await.expect("a")),
        vec![(LotSource::Promotional, 10)]
    );
    // The expiry takes only what is left of the promotion.
    let later = Utc::now() + Duration::days(2);
    assert_eq!(ledger.expire_lots(later).await.expect("sweep"), 1);
    assert_eq!(
        ledger
            .system_balance(SystemAccount::Expiry)
            .await
            .expect("expiry"),
        30
    );
    assert_eq!(balance(&ledger, wallet).await.available, 50);
    assert_audit_clean(&ledger).await;
}

async fn expired_lots_move_to_the_expiry_account(ledger: Ledger) {
    let wallet = ledger.open_wallet("user:1").await.expect("wallet");
    ledger
        .credit(purchase(wallet, 100, "pay_A"))
        .await
        .expect("paid");
    ledger
        .credit(grant(wallet, 40, "grant-1", Some(1)))
        .await
        .expect("promo");
    ledger
        .debit(send_email(wallet, 10, "send-1"))
        .await
        .expect("debit from promo first");
    let reservation = ledger
        .reserve(hold(wallet, 20, "hold-1", 60))
        .await
        .expect("reserve");

    // Nothing is due yet.
    assert_eq!(ledger.expire_lots(Utc::now()).await.expect("sweep"), 0);
    // Two days on: the promotional lot had 40, 10 spent, 20 held (it expires soonest, so the hold
    // drew from it), 10 free: those 10 expire; the held 20 stay with the reservation.
    let later = Utc::now() + Duration::days(2);
    assert_eq!(ledger.expire_lots(later).await.expect("sweep"), 1);
    assert_eq!(
        balance(&ledger, wallet).await,
        Balance {
            available: 100,
            reserved: 20
        }
    );
    assert_eq!(
        ledger
            .system_balance(SystemAccount::Expiry)
            .await
            .expect("expiry"),
        10
    );
    // Sweeping again changes nothing.
    assert_eq!(ledger.expire_lots(later).await.expect("sweep"), 0);

    // Released, the held 20 return to the expired lot, and the next sweep expires them too.
    ledger.release(reservation.id).await.expect("release");
    assert_eq!(ledger.expire_lots(later).await.expect("sweep"), 1);
    assert_eq!(
        balance(&ledger, wallet).await,
        Balance {
            available: 100,
            reserved: 0
        }
    );
    assert_eq!(
        ledger
            .system_balance(SystemAccount::Expiry)
            .await
            .expect("expiry"),
        30
    );
    assert_audit_clean(&ledger).await;
}

async fn reservations_hold_settle_and_release(ledger: Ledger) {
    let wallet = ledger.open_wallet("user:1").await.expect("wallet");
    ledger
        .credit(purchase(wallet, 1_000, "pay_A"))
        .await
        .expect("credit");

    let campaign = hold(wallet, 600, "campaign-1", 30);
    let r = ledger.reserve(campaign.clone()).await.expect("reserve");
    assert_eq!(r.status, ReservationStatus::Pending);
    assert_eq!(
        balance(&ledger, wallet).await,
        Balance {
            available: 400,
            reserved: 600
        }
    );
    // Held credits are not available to others.
    let err = ledger
        .debit(send_email(wallet, 401, "send-1"))
        .await
        .expect_err("held");
    assert!(matches!(
        err,
        LedgerError::InsufficientCredits { available: 400, .. }
    ));
    // Reserving again with the same request returns the same reservation; other content under
    // the same key is a conflict.
    let again = ledger.reserve(campaign.clone()).await.expect("replay");
    assert!(again.replayed && again.id == r.id);
    let bigger = Reserve {
        amount: credits(601),
        ..campaign
    };
    let err = ledger.reserve(bigger).await.expect_err("conflict");
    assert!(
        matches!(err, LedgerError::IdempotencyConflict { .. }),
        "{err:?}"
    );
    assert_eq!(balance(&ledger, wallet).await.reserved, 600);

    let settled = ledger
        .settle(Settle {
            reservation: r.id,
            used: 450,
        })
        .await
        .expect("settle");
    assert_eq!(settled.status, ReservationStatus::Settled);
    assert_eq!(settled.used, Some(450));
    assert_eq!(
        balance(&ledger, wallet).await,
        Balance {
            available: 550,
            reserved: 0
        }
    );
    // Settling again with the same count is a replay; another count is a conflict.
    let replay = ledger
        .settle(Settle {
            reservation: r.id,
            used: 450,
        })
        .await
        .expect("replay");
    assert!(replay.replayed);
    let err = ledger
        .settle(Settle {
            reservation: r.id,
            used: 500,
        })
        .await
        .expect_err("conflict");
    assert!(
        matches!(err, LedgerError::IdempotencyConflict { .. }),
        "{err:?}"
    );
    let err = ledger.release(r.id).await.expect_err("already settled");
    assert!(
        matches!(err, LedgerError::ReservationNotPending { .. }),
        "{err:?}"
    );

    let r2 = ledger
        .reserve(hold(wallet, 500, "campaign-2", 30))
        .await
        .expect("reserve");
    let err = ledger
        .settle(Settle {
            reservation: r2.id,
            used: 501,
        })
        .await
        .expect_err("too many");
    assert!(matches!(err, LedgerError::InvalidAmount(_)), "{err:?}");
    let released = ledger.release(r2.id).await.expect("release");
    assert_eq!(released.status, ReservationStatus::Released);
    assert!(
        ledger
            .release(r2.id)
            .await
            .expect("release replay")
            .replayed
    );
    assert_eq!(
        balance(&ledger, wallet).await,
        Balance {
            available: 550,
            reserved: 0
        }
    );

    // A settle of zero spends nothing and frees everything.
    let r3 = ledger
        .reserve(hold(wallet, 50, "campaign-3", 30))
        .await
        .expect("reserve");
    ledger
        .settle(Settle {
            reservation: r3.id,
            used: 0,
        })
        .await
        .expect("settle 0");
    assert_eq!(
        balance(&ledger, wallet).await,
        Balance {
            available: 550,
            reserved: 0
        }
    );

    let page = ledger
        .history(wallet, &HistoryQuery::default())
        .await
        .expect("history");
    let kinds: Vec<_> = page
        .entries
        .iter()
        .map(|t| (t.kind, t.signed_amount()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (TransferKind::UsageSms, -450),
            (TransferKind::Purchase, 1_000)
        ]
    );
    assert_audit_clean(&ledger).await;
}

async fn reservations_expire(ledger: Ledger) {
    let wallet = ledger.open_wallet("user:1").await.expect("wallet");
    ledger
        .credit(purchase(wallet, 100, "pay_A"))
        .await
        .expect("credit");
    let r = ledger
        .reserve(hold(wallet, 70, "campaign-1", -1))
        .await
        .expect("reserve");
    // Already past its time: it can't be settled, only swept.
    let err = ledger
        .settle(Settle {
            reservation: r.id,
            used: 10,
        })
        .await
        .expect_err("expired");
    assert!(
        matches!(err, LedgerError::ReservationNotPending { .. }),
        "{err:?}"
    );
    assert_eq!(
        ledger.expire_reservations(Utc::now()).await.expect("sweep"),
        1
    );
    assert_eq!(
        ledger.reservation(r.id).await.expect("read").status,
        ReservationStatus::Expired
    );
    assert_eq!(
        balance(&ledger, wallet).await,
        Balance {
            available: 100,
            reserved: 0
        }
    );
    assert_eq!(
        ledger.expire_reservations(Utc::now()).await.expect("sweep"),
        0
    );
    assert_audit_clean(&ledger).await;
}

async fn batches_give_each_item_its_own_outcome(ledger: Ledger) {
    let a = ledger.open_wallet("user:a").await.expect("wallet");
    let b = ledger.open_wallet("user:b").await.expect("wallet");
    let ops = vec![
        Op::Credit(purchase(a, 100, "pay_A")),
        Op::Debit(send_email(a, 60, "a-1")),
        Op::Debit(send_email(a, 60, "a-2")), // only 40 left: refused
        Op::Debit(send_email(b, 1, "b-1")),  // b is empty: refused
        Op::Credit(purchase(b, 10, "pay_B")),
        Op::Debit(send_email(a, 60, "a-1")), // replay of an item of this same batch
        Op::Debit(send_email(AccountId(999_999), 1, "ghost")),
    ];
    let outcomes = ledger.submit(&ops).await.expect("batch commits");
    assert!(matches!(&outcomes[0], Ok(OpOutcome::Transfer(r)) if !r.replayed));
    assert!(matches!(&outcomes[1], Ok(OpOutcome::Transfer(r)) if !r.replayed));
    assert!(matches!(
        outcomes[2],
        Err(LedgerError::InsufficientCredits { available: 40, .. })
    ));
    // b's items ran in the order given: the debit before the credit.
    assert!(matches!(
        outcomes[3],
        Err(LedgerError::InsufficientCredits { available: 0, .. })
    ));
    assert!(matches!(&outcomes[4], Ok(OpOutcome::Transfer(_))));
    assert!(matches!(&outcomes[5], Ok(OpOutcome::Transfer(r)) if r.replayed));
    assert!(matches!(outcomes[6], Err(LedgerError::UnknownAccount(_))));
    assert_eq!(balance(&ledger, a).await.available, 40);
    assert_eq!(balance(&ledger, b).await.available, 10);
    // Refused keys were not consumed.
    assert!(ledger.transfer_by_key("a-2").await.expect("read").is_none());
    assert_audit_clean(&ledger).await;
}

async fn an_all_or_nothing_batch_commits_nothing_when_one_item_is_refused(ledger: Ledger) {
    let a = ledger.open_wallet("user:a").await.expect("wallet");
    let ops = vec![
        Op::Credit(purchase(a, 100, "pay_A")),
        Op::Debit(send_email(a, 60, "a-1")),
        Op::Debit(send_email(a, 60, "a-2")),
    ];
    let err = ledger
        .submit_all_or_nothing(&ops)
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, LedgerError::BatchItemRefused { index: 2, source }
            if matches!(**source, LedgerError::InsufficientCredits { available: 40, .. })),
        "{err:?}"
    );
    assert_eq!(balance(&ledger, a).await.available, 0);
    assert!(
        ledger
            .transfer_by_key("topup:pay_A")
            .await
            .expect("read")
            .is_none()
    );

    let outcomes = ledger
        .submit_all_or_nothing(&ops[..2])
        .await
        .expect("commits");
    assert_eq!(outcomes.len(), 2);
    assert_eq!(balance(&ledger, a).await.available, 40);
    assert_audit_clean(&ledger).await;
}

async fn history_is_newest_first_paginated_and_filterable(ledger: Ledger) {
    let wallet = ledger.open_wallet("user:1").await.expect("wallet");
    let other = ledger.open_wallet("user:2").await.expect("wallet");
    ledger
        .credit(purchase(wallet, 1_000, "pay_A"))
        .await
        .expect("credit");
    ledger
        .credit(purchase(other, 1_000, "pay_B"))
        .await
        .expect("credit");
    for i in 0..7 {
        ledger
            .debit(send_email(wallet, 10 + i, &format!("send-{i}")))
            .await
            .expect("debit");
    }
    let mut query = HistoryQuery {
        limit: 3,
        ..HistoryQuery::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = ledger.history(wallet, &query).await.expect("page");
        assert!(page.entries.len() <= 3);
        seen.extend(page.entries.iter().map(|t| t.signed_amount()));
        match page.next {
            Some(next) => query.before = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, vec![-16, -15, -14, -13, -12, -11, -10, 1_000]);

    let purchases_only = HistoryQuery {
        kinds: vec![TransferKind::Purchase],
        ..Default::default()
    };
    let page = ledger
        .history(wallet, &purchases_only)
        .await
        .expect("filtered");
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].reference.as_deref(), Some("pay_A"));

    let future = HistoryQuery {
        from: Some(Utc::now() + Duration::hours(1)),
        ..Default::default()
    };
    assert!(
        ledger
            .history(wallet, &future)
            .await
            .expect("empty")
            .entries
            .is_empty()
    );
    let past = HistoryQuery {
        to: Some(Utc::now() + Duration::hours(1)),
        ..Default::default()
    };
    assert_eq!(
        ledger
            .history(wallet, &past)
            .await
            .expect("all")
            .entries
            .len(),
        8
    );

    let err = ledger
        .history(
            wallet,
            &HistoryQuery {
                limit: 0,
                ..Default::default()
            },
        )
        .await
        .expect_err("limit 0");
    assert!(matches!(err, LedgerError::InvalidRequest(_)));
}

async fn unknown_accounts_and_bad_requests_are_typed_errors(ledger: Ledger) {
    let ghost = AccountId(424_242);
    let err = ledger
        .credit(purchase(ghost, 10, "pay_X"))
        .await
        .expect_err("unknown");
    assert!(
        matches!(err, LedgerError::UnknownAccount(id) if id == ghost),
        "{err:?}"
    );
    let err = ledger
        .debit(send_email(ghost, 10, "x"))
        .await
        .expect_err("unknown");
    assert!(matches!(err, LedgerError::UnknownAccount(_)), "{err:?}");
    let err = ledger
        .reserve(hold(ghost, 10, "x", 5))
        .await
        .expect_err("unknown");
    assert!(matches!(err, LedgerError::UnknownAccount(_)), "{err:?}");
    let err = ledger.balance(ghost).await.expect_err("unknown");
    assert!(matches!(err, LedgerError::UnknownAccount(_)), "{err:?}");

    // A system account is not a wallet: it can't be credited or debited directly.
    let system = ledger
        .system_account(SystemAccount::EmailUsage)
        .expect("system account");
    let err = ledger
        .debit(send_email(system, 10, "sys"))
        .await
        .expect_err("not a wallet");
    assert!(matches!(err, LedgerError::NotAWallet(_)), "{err:?}");

    let err = ledger
        .settle(Settle {
            reservation: ledger::ReservationId(77),
            used: 1,
        })
        .await;
    assert!(
        matches!(err, Err(LedgerError::UnknownReservation(_))),
        "{err:?}"
    );
    let wallet = ledger.open_wallet("user:1").await.expect("wallet");
    ledger
        .credit(purchase(wallet, 10, "pay_A"))
        .await
        .expect("credit");
    let r = ledger
        .reserve(hold(wallet, 5, "h", 5))
        .await
        .expect("reserve");
    let err = ledger
        .settle(Settle {
            reservation: r.id,
            used: -1,
        })
        .await;
    assert!(matches!(err, Err(LedgerError::InvalidAmount(_))), "{err:?}");

    for bad in ["", "has space", "naïve"] {
        assert!(matches!(
            ledger.open_wallet(bad).await,
            Err(LedgerError::InvalidRequest(_))
        ));
    }
    // A credit that would push a balance past the ledger's limit is refused, not wrapped around.
    let max = ledger::MAX_AMOUNT;
    let big = Credit {
        amount: credits(max),
        key: key("big-1"),
        ..purchase(wallet, 1, "pay_big")
    };
    let err = ledger.credit(big).await.expect_err("over the limit");
    assert!(matches!(err, LedgerError::BalanceLimitExceeded), "{err:?}");
    assert_eq!(balance(&ledger, wallet).await.available, 5);
    assert_audit_clean(&ledger).await;
}

async fn the_database_itself_refuses_a_negative_balance(ledger: Ledger) {
    use sea_orm::ConnectionTrait;
    let wallet = ledger.open_wallet("user:1").await.expect("wallet");
    let raw = |sql: String| {
        let ledger = &ledger;
        async move {
            ledger
                .transact(|tx| {
                    let sql = sql.clone();
                    Box::pin(
                        async move { tx.execute_unprepared(&sql).await.map_err(LedgerError::from) },
                    )
                })
                .await
        }
    };
    let result = raw(format!(
        "UPDATE ledger_balances SET available = -1 WHERE account_id = {}",
        wallet.0
    ))
    .await;
    assert!(
        result.is_err(),
        "CHECK (available >= 0) must refuse a negative balance"
    );
    let sql = "INSERT INTO ledger_transfers (idempotency_key, fingerprint, kind, debit_account_id, \
               credit_account_id, wallet_account_id, amount, created_at) VALUES ('k', 'f', \
               'purchase', 1, 1, 1, 0, 0)";
    assert!(raw(sql.to_string()).await.is_err());
    assert_eq!(balance(&ledger, wallet).await.available, 0);
}

/// Reads beside the ledger never write, and a write transaction started inside another in the
/// same task is refused at once (on SQLite it would wait for the writer its own task holds).
async fn reads_never_write_and_transactions_do_not_nest(ledger: Ledger) {
    use sea_orm::ConnectionTrait;
    let wallet = ledger.open_wallet("user:1").await.expect("wallet");
    let reads = ledger.reads();
    assert!(
        reads
            .execute_unprepared("DELETE FROM ledger_balances")
            .await
            .is_err()
    );
    let row = reads
        .query_one_raw(ledger::statement(
            reads.get_database_backend(),
            "SELECT COUNT(*) AS n FROM ledger_balances",
            vec![],
        ))
        .await
        .expect("read")
        .expect("row");
    assert_eq!(row.try_get::<i64>("", "n").expect("n"), 1);
    let started = std::time::Instant::now();
    let nested = ledger
        .transact(|tx| {
            let ledger = &ledger;
            Box::pin(async move {
                tx.credit(&purchase(wallet, 10, "pay_N")).await?;
                ledger.credit(purchase(wallet, 20, "pay_M")).await?;
                Ok::<_, LedgerError>(())
            })
        })
        .await;
    assert!(
        matches!(nested, Err(LedgerError::InvalidRequest(ref m)) if m.contains("inside another")),
        "{nested:?}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "refused at once"
    );
    assert_eq!(balance(&ledger, wallet).await.available, 0, "rolled back");
}

/// A component's single-statement write commits by itself; a second statement is refused, and
/// an injected transient failure is retried.
async fn an_autocommit_write_is_one_statement(ledger: Ledger) {
    use sea_orm::ConnectionTrait;
    let create = "CREATE TABLE other_component (id BIGINT PRIMARY KEY)";
    ledger
        .autocommit(|w| {
            Box::pin(async move {
                w.execute_unprepared(create)
                    .await
                    .map_err(LedgerError::from)
            })
        })
        .await
        .expect("one statement");
    ledger.inject_transient_failures(2);
    ledger
        .autocommit(|w| {
            Box::pin(async move {
                w.execute_unprepared("INSERT INTO other_component (id) VALUES (1)")
                    .await
                    .map_err(LedgerError::from)
            })
        })
        .await
        .expect("retried through two injected failures");
    let second = ledger
        .autocommit(|w| {
            Box::pin(async move {
                w.execute_unprepared("INSERT INTO other_component (id) VALUES (2)")
                    .await?;
                w.execute_unprepared("INSERT INTO other_component (id) VALUES (3)")
                    .await
                    .map_err(LedgerError::from)
            })
        })
        .await;
    assert!(second.is_err(), "a second statement is refused");
    let reads = ledger.reads();
    let row = reads
        .query_one_raw(ledger::statement(
            reads.get_database_backend(),
            "SELECT COUNT(*) AS n FROM other_component",
            vec![],
        ))
        .await
        .expect("read")
        .expect("row");
    assert_eq!(
        row.try_get::<i64>("", "n").expect("n"),
        2,
        "the first statement of each committed, the refused one never ran"
    );
}

async fn wallets_are_opened_once_per_owner(ledger: Ledger) {
    let a = ledger.open_wallet("user:1").await.expect("wallet");
    let again = ledger.open_wallet("user:1").await.expect("wallet");
    let b = ledger.open_wallet("user:2").await.expect("wallet");
    assert_eq!(a, again);
    assert_ne!(a, b);
    assert_eq!(ledger.find_wallet("user:1").await.expect("find"), Some(a));
    assert_eq!(ledger.find_wallet("user:3").await.expect("find"), None);
}

async fn a_transaction_can_span_several_operations(ledger: Ledger) {
    let wallet = ledger.open_wallet("user:1").await.expect("wallet");
    let refused: Result<(), LedgerError> = ledger
        .transact(|tx| {
            Box::pin(async move {
                tx.credit(&purchase(wallet, 100, "pay_A")).await?;
                tx.debit(&send_email(wallet, 30, "send-1")).await?;
                assert_eq!(tx.balance(wallet).await?.available, 70);
                // Anything but a transient error rolls the whole transaction back.
                Err(LedgerError::InvalidRequest("changed my mind".into()))
            })
        })
        .await;
    assert!(matches!(refused, Err(LedgerError::InvalidRequest(_))));
    assert_eq!(balance(&ledger, wallet).await.available, 0);
    assert!(
        ledger
            .transfer_by_key("topup:pay_A")
            .await
            .expect("read")
            .is_none()
    );

    let receipt = ledger
        .transact(|tx| Box::pin(async move { tx.credit(&purchase(wallet, 100, "pay_A")).await }))
        .await
        .expect("committed");
    assert!(!receipt.replayed);
    assert_eq!(balance(&ledger, wallet).await.available, 100);
    assert_audit_clean(&ledger).await;
}

/// A transaction that meets a transient failure (a deadlock, a serialization failure, BUSY) is
/// run again from the start; its effects land once.
async fn transactions_retry_transient_failures(ledger: Ledger) {
    let wallet = ledger.open_wallet("user:1").await.expect("wallet");
    ledger.inject_transient_failures(3);
    let runs = std::sync::atomic::AtomicU32::new(0);
    let runs = &runs;
    let receipt = ledger
        .transact(|tx| {
            Box::pin(async move {
                runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let receipt = tx.credit(&purchase(wallet, 100, "pay_R")).await?;
                tx.debit(&send_email(wallet, 40, "send-R")).await?;
                Ok::<_, LedgerError>(receipt)
            })
        })
        .await
        .expect("committed on the fourth run");
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 4);
    assert!(!receipt.replayed, "each failed run was rolled back");
    assert_eq!(balance(&ledger, wallet).await.available, 60);

    // Every ledger operation retries the same way.
    ledger.inject_transient_failures(2);
    ledger
        .credit(purchase(wallet, 50, "pay_S"))
        .await
        .expect("credited after two retries");
    ledger.inject_transient_failures(1);
    let held = ledger
        .reserve(hold(wallet, 30, "hold-S", 10))
        .await
        .expect("reserved after a retry");
    assert_eq!(
        balance(&ledger, wallet).await,
        Balance {
            available: 80,
            reserved: 30
        }
    );

    // A failure that outlasts the retries is returned, and nothing of it is committed.
    ledger.inject_transient_failures(10);
    let failed = ledger
        .transact(|tx| Box::pin(async move { tx.credit(&purchase(wallet, 1, "pay_T")).await }))
        .await;
    assert!(matches!(&failed, Err(e) if e.is_transient()), "{failed:?}");
    ledger.inject_transient_failures(0);
    assert!(
        ledger
            .transfer_by_key("topup:pay_T")
            .await
            .expect("read")
            .is_none()
    );
    ledger.release(held.id).await.expect("release");
    assert_audit_clean(&ledger).await;
}

/// The same reservation request retried later (so with a later expiry, derived from the
/// clock) is the same request: it answers the original reservation, expiry included.
async fn a_retried_reservation_answers_the_original(ledger: Ledger) {
    let wallet = ledger.open_wallet("user:1").await.expect("wallet");
    ledger
        .credit(purchase(wallet, 100, "pay_H"))
        .await
        .expect("credit");
    let first = ledger
        .reserve(hold(wallet, 60, "hold-H", 10))
        .await
        .expect("reserve");
    let retry = ledger
        .reserve(hold(wallet, 60, "hold-H", 11))
        .await
        .expect("a retry with a later expiry");
    assert!(retry.replayed);
    assert_eq!((retry.id, retry.expires_at), (first.id, first.expires_at));
    assert_eq!(balance(&ledger, wallet).await.reserved, 60, "held once");
    let other = ledger.reserve(hold(wallet, 50, "hold-H", 10)).await;
    assert!(
        matches!(other, Err(LedgerError::IdempotencyConflict { .. })),
        "the same key for another amount: {other:?}"
    );
    assert_audit_clean(&ledger).await;
}

#[tokio::test]
async fn migrations_are_idempotent_and_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    let config = ledger::ConnectConfig::new(url);
    let applied = Ledger::migrate(&config).await.expect("migrate");
    assert_eq!(
        applied,
        vec![
            "m0001_create_ledger".to_string(),
            "m0002_undrawn_debits".to_string(),
            "m0003_lots_in_spending_order".to_string(),
            "m0004_lots_by_wallet".to_string(),
            "m0005_transfers_by_wallet_time".to_string(),
            "m0006_wallet_half_hours".to_string(),
            "m0007_half_hours_without_triggers".to_string()
        ]
    );
    assert_eq!(Ledger::migrate(&config).await.expect("again"), applied);
    let ledger = Ledger::connect(&config)
        .await
        .expect("connect after migrate");
    assert_audit_clean(&ledger).await;
}

#[tokio::test]
async fn unsupported_database_urls_are_refused_with_a_message() {
    let err = Ledger::connect(&ledger::ConnectConfig::new("mysql://root:hunter2@db/x"))
        .await
        .expect_err("unsupported");
    let message = err.to_string();
    assert!(message.contains("unsupported database URL"), "{message}");
    assert!(
        !message.contains("hunter2"),
        "the password leaked: {message}"
    );
}
