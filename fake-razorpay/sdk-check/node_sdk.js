// Razorpay's official Node SDK against fake-razorpay, changing only its base URL.
// Usage: node node_sdk.js http://127.0.0.1:PORT KEY_ID KEY_SECRET   (with `razorpay` installed)
const Razorpay = require('razorpay');
const { validatePaymentVerification } = require('razorpay/dist/utils/razorpay-utils');

const [base, key_id, key_secret] = process.argv.slice(2);
const rzp = new Razorpay({ key_id, key_secret });
rzp.api.rq.defaults.baseURL = base; // the only change from production use

function check(ok, what) {
  if (!ok) {
    console.error('FAILED:', what);
    process.exit(1);
  }
}

(async () => {
  const order = await rzp.orders.create({ amount: 50000, currency: 'INR', receipt: 'sdk_check_node', notes: { via: 'node' } });
  check(order.status === 'created' && order.amount === 50000, 'create order');
  check((await rzp.orders.fetch(order.id)).id === order.id, 'fetch order');

  const paid = await (await fetch(`${base}/_fake/orders/${order.id}/pay`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ method: 'card', number: '4100280000001007', otp: '1234' }),
  })).json();
  const cb = paid.callback;
  check(validatePaymentVerification({ order_id: cb.razorpay_order_id, payment_id: cb.razorpay_payment_id }, cb.razorpay_signature, key_secret), 'payment signature');

  const payments = await rzp.orders.fetchPayments(order.id);
  check(payments.count === 1 && payments.items[0].status === 'captured', 'order payments');
  const payment = await rzp.payments.fetch(cb.razorpay_payment_id);
  check(payment.status === 'captured' && payment.method === 'card', 'fetch payment');
  const refund = await rzp.payments.refund(payment.id, { amount: 10000 });
  check(refund.status === 'pending', 'refund answered pending');
  const fetched = await rzp.refunds.fetch(refund.id);
  check(fetched.amount === 10000 && ['pending', 'processed'].includes(fetched.status), 'fetch refund');
  check((await rzp.orders.all({ count: 5 })).entity === 'collection', 'list orders');

  try {
    await rzp.orders.fetch('order_DoesNotExist01');
    check(false, 'an unknown id should fail');
  } catch (e) {
    check(e.statusCode === 400 && /does not exist/.test(e.error.description), 'unknown id error');
  }
  console.log('razorpay-node', Razorpay.VERSION, 'works against fake-razorpay');
})().catch((e) => {
  console.error('FAILED:', e);
  process.exit(1);
});
