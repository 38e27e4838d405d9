//! Property tests: random sequences of credits, debits, reservations, settles, releases, expiries
//! and retried keys. After every step: each balance moved exactly as the step's answer says (a
//! replay or a refusal moves nothing), no wallet is below zero, and the audit is clean (all
//! accounts sum to zero, balance rows equal history, lots agree with balances).

mod common;

use chrono::{DateTime, Duration, Utc};
use ledger::{
    AccountId, Balance, Credit, CreditKind, Credits, Debit, DebitKind, IdempotencyKey, Ledger,
    LedgerError, Op, OpOutcome, ReservationId, Reserve, Settle, SystemAccount,
};
use proptest::prelude::*;

const WALLETS: usize = 3;

#[derive(Debug, Clone)]
enum Step {
    Credit {
        wallet: usize,
        amount: i64,
        promo: bool,
        expires_in_days: Option<i64>,
        key: u8,
    },
    Debit {
        wallet: usize,
        amount: i64,
        sms: bool,
        key: u8,
    },
    Reserve {
        wallet: usize,
        amount: i64,
        key: u8,
        lapsed: bool,
    },
    Settle {
        reservation: usize,
        used: i64,
    },
    Release {
        reservation: usize,
    },
    ExpireLots {
        days_ahead: i64,
    },
    ExpireReservations,
    /// The housekeeping sweep that draws single debits from their lots.
    Draw,
    /// Submit an earlier step's exact request again.
    Retry {
        step: usize,
    },
    /// Several credits and debits in one batch.
    Batch {
        items: Vec<(usize, i64, bool, u8)>,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let wallet = 0..WALLETS;
    prop_oneof![
        4 => (wallet.clone(), 1..500i64, any::<bool>(), prop::option::of(1..5i64), 0..24u8)
            .prop_map(|(wallet, amount, promo, expires_in_days, key)| Step::Credit { wallet, amount, promo, expires_in_days, key }),
        5 => (wallet.clone(), 1..400i64, any::<bool>(), 0..24u8)
            .prop_map(|(wallet, amount, sms, key)| Step::Debit { wallet, amount, sms, key }),
        2 => (wallet.clone(), 1..300i64, 0..24u8, prop::bool::weighted(0.2))
            .prop_map(|(wallet, amount, key, lapsed)| Step::Reserve { wallet, amount, key, lapsed }),
        2 => (0..8usize, 0..320i64).prop_map(|(reservation, used)| Step::Settle { reservation, used }),
        1 => (0..8usize).prop_map(|reservation| Step::Release { reservation }),
        1 => (0..7i64).prop_map(|days_ahead| Step::ExpireLots { days_ahead }),
        1 => Just(Step::ExpireReservations),
        1 => Just(Step::Draw),
        3 => (0..40usize).prop_map(|step| Step::Retry { step }),
        1 => prop::collection::vec((wallet, 1..200i64, any::<bool>(), 0..24u8), 1..6)
            .prop_map(|items| Step::Batch { items }),
    ]
}

fn key(prefix: &str, n: u8) -> IdempotencyKey {
    IdempotencyKey::new(format!("{prefix}-{n}")).expect("valid key")
}

fn credits(n: i64) -> Credits {
    Credits::new(n).expect("positive")
}

struct World {
    ledger: Ledger,
    wallets: Vec<AccountId>,
    reservations: Vec<ReservationId>,
    /// Requests sent so far, for retries.
    sent: Vec<Op>,
    start: DateTime<Utc>,
}

impl World {
    async fn balances(&self) -> Vec<Balance> {
        let mut out = Vec::new();
        for w in &self.wallets {
            out.push(self.ledger.balance(*w).await.expect("balance"));
        }
        out
    }

    async fn expiry(&self) -> i64 {
        self.ledger
            .system_balance(SystemAccount::Expiry)
            .await
            .expect("expiry balance")
    }

    fn request(&self, step: &Step) -> Option<Op> {
        Some(match *step {
            Step::Credit {
                wallet,
                amount,
                promo,
                expires_in_days,
                key: k,
            } => Op::Credit(Credit {
                wallet: self.wallets[wallet],
                amount: credits(amount),
                kind: if promo {
                    CreditKind::Grant
                } else {
                    CreditKind::Purchase
                },
                key: key("credit", k),
                reference: Some(format!("pay_{k}")),
                memo: None,
                expires_at: expires_in_days.map(|d| self.start + Duration::days(d)),
            }),
            Step::Debit {
                wallet,
                amount,
                sms,
                key: k,
            } => Op::Debit(Debit {
                wallet: self.wallets[wallet],
                amount: credits(amount),
                kind: if sms {
                    DebitKind::UsageSms
                } else {
                    DebitKind::UsageEmail
                },
                key: key("debit", k),
                reference: None,
                memo: None,
            }),
            Step::Reserve {
                wallet,
                amount,
                key: k,
                lapsed,
            } => Op::Reserve(Reserve {
                wallet: self.wallets[wallet],
                amount: credits(amount),
                kind: DebitKind::UsageEmail,
                key: key("reserve", k),
                reference: None,
                expires_at: if lapsed {
                    self.start - Duration::seconds(1)
                } else {
                    self.start + Duration::days(30)
                },
            }),
            Step::Settle { reservation, used } => Op::Settle(Settle {
                reservation: *self.reservations.get(reservation)?,
                used,
            }),
            Step::Release { reservation } => Op::Release(*self.reservations.get(reservation)?),
            _ => return None,
        })
    }

    /// Applies one request and checks that balances moved exactly as its answer says.
    async fn apply(&mut self, op: Op) {
        let before = self.balances().await;
        let outcome = match &op {
            Op::Credit(c) => self.ledger.credit(c.clone()).await.map(OpOutcome::Transfer),
            Op::Debit(d) => self.ledger.debit(d.clone()).await.map(OpOutcome::Transfer),
            Op::Reserve(r) => self
                .ledger
                .reserve(r.clone())
                .await
                .map(OpOutcome::Reservation),
            Op::Settle(s) => self
                .ledger
                .settle(s.clone())
                .await
                .map(OpOutcome::Reservation),
            Op::Release(id) => self.ledger.release(*id).await.map(OpOutcome::Reservation),
        };
        let after = self.balances().await;
        let mut expected = before.clone();
        self.expect(&op, &outcome, &mut expected);
        assert_eq!(after, expected, "after {op:?} -> {outcome:?}");
        self.sent.push(op);
    }

    fn expect(
        &mut self,
        op: &Op,
        outcome: &Result<OpOutcome, LedgerError>,
        expected: &mut [Balance],
    ) {
        let index = |w: AccountId| {
            self.wallets
                .iter()
                .position(|x| *x == w)
                .expect("known wallet")
        };
        match (op, outcome) {
            (_, Err(e)) => assert!(
                matches!(
                    e,
                    LedgerError::InsufficientCredits { .. }
                        | LedgerError::IdempotencyConflict { .. }
                        | LedgerError::ReservationNotPending { .. }
                        | LedgerError::InvalidAmount(_)
                ),
                "unexpected error {e:?} for {op:?}"
            ),
            (_, Ok(OpOutcome::Transfer(r))) if r.replayed => {}
            (_, Ok(OpOutcome::Reservation(r))) if r.replayed => {}
            (Op::Credit(c), Ok(_)) => expected[index(c.wallet)].available += c.amount.get(),
            (Op::Debit(d), Ok(_)) => expected[index(d.wallet)].available -= d.amount.get(),
            (Op::Reserve(r), Ok(OpOutcome::Reservation(made))) => {
                let b = &mut expected[index(r.wallet)];
                b.available -= r.amount.get();
                b.reserved += r.amount.get();
                self.reservations.push(made.id);
            }
            (Op::Settle(_) | Op::Release(_), Ok(OpOutcome::Reservation(done))) => {
                let b = &mut expected[index(done.wallet)];
                b.reserved -= done.amount;
                b.available += done.amount - done.used.unwrap_or(0);
            }
            (op, outcome) => panic!("{op:?} answered {outcome:?}"),
        }
    }

    async fn run(&mut self, step: &Step) {
        match step {
            Step::ExpireLots { days_ahead } => {
                let (before, expiry_before) = (self.balances().await, self.expiry().await);
                self.ledger
                    .expire_lots(self.start + Duration::days(*days_ahead) + Duration::seconds(1))
                    .await
                    .expect("expire lots");
                let (after, expiry_after) = (self.balances().await, self.expiry().await);
                let lost: i64 = before
                    .iter()
                    .zip(&after)
                    .map(|(b, a)| b.available - a.available)
                    .sum();
                assert_eq!(
                    lost,
                    expiry_after - expiry_before,
                    "expired credits went to the expiry account"
                );
                assert!(
                    before
                        .iter()
                        .zip(&after)
                        .all(|(b, a)| b.reserved == a.reserved)
                );
            }
            Step::Draw => {
                let before = self.balances().await;
                self.ledger.draw_pending().await.expect("draw");
                assert_eq!(before, self.balances().await, "drawing moves no credits");
            }
            Step::ExpireReservations => {
                let before = self.balances().await;
                self.ledger
                    .expire_reservations(self.start)
                    .await
                    .expect("expire reservations");
                let after = self.balances().await;
                for (b, a) in before.iter().zip(&after) {
                    assert_eq!(
                        b.total(),
                        a.total(),
                        "expiring a hold moves nothing out of the wallet"
                    );
                }
            }
            Step::Retry { step } => {
                if let Some(op) = self.sent.get(*step).cloned() {
                    self.apply(op).await;
                }
            }
            Step::Batch { items } => {
                let ops: Vec<Op> = items
                    .iter()
                    .map(|&(wallet, amount, is_credit, k)| {
                        let step = if is_credit {
                            Step::Credit {
                                wallet,
                                amount,
                                promo: false,
                                expires_in_days: None,
                                key: k,
                            }
                        } else {
                            Step::Debit {
                                wallet,
                                amount,
                                sms: false,
                                key: k,
                            }
                        };
                        self.request(&step).expect("credit or debit")
                    })
                    .collect();
                let before = self.balances().await;
                let outcomes = self.ledger.submit(&ops).await.expect("batch commits");
                let mut expected = before.clone();
                for (op, outcome) in ops.iter().zip(&outcomes) {
                    self.expect(op, outcome, &mut expected);
                }
                assert_eq!(
                    self.balances().await,
                    expected,
                    "batch {ops:?} -> {outcomes:?}"
                );
                self.sent.extend(ops);
            }
            other => {
                if let Some(op) = self.request(other) {
                    self.apply(op).await;
                }
            }
        }
        for b in self.balances().await {
            assert!(
                b.available >= 0 && b.reserved >= 0,
                "negative balance {b:?}"
            );
        }
        let report = self.ledger.audit().await.expect("audit");
        assert!(report.is_clean(), "after {step:?}:\n{report}");
    }
}

async fn simulate(ledger: Ledger, steps: Vec<Step>) {
    let wallets = common::open_wallets(&ledger, WALLETS).await;
    let mut world = World {
        ledger,
        wallets,
        reservations: Vec::new(),
        sent: Vec::new(),
        start: Utc::now(),
    };
    for step in &steps {
        world.run(step).await;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_every_invariant_on_sqlite(steps in prop::collection::vec(step(), 1..40)) {
        common::runtime().block_on(async {
            let t = common::sqlite().await;
            simulate(t.ledger.clone(), steps).await;
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 50, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_every_invariant_on_postgres(steps in prop::collection::vec(step(), 1..40)) {
        common::runtime().block_on(async {
            let Some(t) = common::postgres().await else { return };
            simulate(t.ledger.clone(), steps).await;
        });
    }
}
