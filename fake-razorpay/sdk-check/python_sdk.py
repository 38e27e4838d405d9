"""Razorpay's official Python SDK against fake-razorpay, changing only its base URL.

Usage: python3 python_sdk.py http://127.0.0.1:PORT KEY_ID KEY_SECRET
Exits non-zero (with the failing step) if the SDK can't do what the top-up journey needs.
"""
import json
import sys
import urllib.request

import razorpay

base, key_id, key_secret = sys.argv[1:4]
client = razorpay.Client(auth=(key_id, key_secret), base_url=base)

order = client.order.create({"amount": 50000, "currency": "INR", "receipt": "sdk_check", "notes": {"via": "python"}})
assert order["status"] == "created" and order["amount"] == 50000, order
assert client.order.fetch(order["id"])["id"] == order["id"]

request = urllib.request.Request(
    f"{base}/_fake/orders/{order['id']}/pay",
    data=json.dumps({"method": "upi", "vpa": "success@razorpay"}).encode(),
    headers={"content-type": "application/json"},
    method="POST",
)
paid = json.load(urllib.request.urlopen(request))
callback = paid["callback"]
client.utility.verify_payment_signature(callback)  # raises SignatureVerificationError if wrong

payments = client.order.payments(order["id"])
assert payments["count"] == 1 and payments["items"][0]["status"] == "captured", payments
payment = client.payment.fetch(callback["razorpay_payment_id"])
assert payment["status"] == "captured" and payment["notes"] == [], payment
refund = client.payment.refund(payment["id"], {"amount": 10000})
assert refund["status"] == "pending", refund  # normal-speed refunds are answered pending
fetched = client.refund.fetch(refund["id"])
assert fetched["amount"] == 10000 and fetched["status"] in ("pending", "processed"), fetched
assert client.order.all({"count": 5})["entity"] == "collection"

try:
    client.order.fetch("order_DoesNotExist01")
    raise AssertionError("an unknown id should fail")
except razorpay.errors.BadRequestError as e:
    assert "does not exist" in str(e), e

bad = razorpay.Client(auth=(key_id, "wrong"), base_url=base)
try:
    bad.order.all()
    raise AssertionError("a wrong secret should fail")
except razorpay.errors.BadRequestError:
    pass

print("razorpay-python", getattr(razorpay, "VERSION", "?"), "works against fake-razorpay")
