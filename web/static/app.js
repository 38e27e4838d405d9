// Billing: "Top up" opens the Add Credits modal (the link works without JavaScript), and the
// Amount field previews the credits it buys, with the server's rules (the server decides).
(function () {
  var button = document.getElementById('topup-button');
  var dialog = document.getElementById('add-credits');
  if (button && dialog && typeof dialog.showModal === 'function') {
    button.addEventListener('click', function (e) {
      e.preventDefault();
      dialog.showModal();
      var input = dialog.querySelector('input[name=amount]');
      if (input) input.focus();
    });
    dialog.querySelector('.close').addEventListener('click', function () { dialog.close(); });
  }
  function rupees(p) {
    var r = Math.floor(p / 100), s = String(r), last = s.slice(-3), rest = s.slice(0, -3);
    if (rest) last = rest.replace(/\B(?=(\d{2})+(?!\d))/g, ',') + ',' + last;
    return '₹' + last + (p % 100 ? '.' + String(p % 100).padStart(2, '0') : '');
  }
  function group(n) { return rupees(n * 100).slice(1); }
  document.querySelectorAll('form.amount-form').forEach(function (form) {
    var input = form.querySelector('input[name=amount]');
    var preview = form.querySelector('.preview');
    var ppc = +form.dataset.ppc, min = +form.dataset.min, max = +form.dataset.max;
    function update() {
      var text = input.value.trim().replace(/^(₹|Rs\.?|INR)\s*/i, '').replace(/,/g, '');
      if (!text) { preview.textContent = ''; return; }
      var m = /^(\d+)(?:\.(\d{1,2}))?$/.exec(text);
      if (!m || m[1].length > 12) { preview.textContent = 'Enter the amount in rupees, like 1000 or 1,000.50.'; return; }
      var paise = +m[1] * 100 + (m[2] ? +(m[2] + '0').slice(0, 2) : 0);
      if (paise < min) { preview.textContent = 'The minimum top-up is ' + rupees(min) + '.'; return; }
      if (paise > max) { preview.textContent = 'The maximum top-up is ' + rupees(max) + '.'; return; }
      if (paise % ppc) { preview.textContent = 'Credits are sold in steps of ' + rupees(ppc) + '.'; return; }
      preview.textContent = '= ' + group(paise / ppc) + ' credits.';
    }
    input.addEventListener('input', update);
    update();
  });
})();
