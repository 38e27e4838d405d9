// Hands the browser to Razorpay's checkout at once; the Continue button does the same without
// JavaScript.
document.getElementById('checkout').submit();
