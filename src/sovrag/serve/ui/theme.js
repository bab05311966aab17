// Colour theme: Auto (the system's light or dark setting, prefers-color-scheme), Light or Dark, remembered in
// localStorage and applied as data-theme on <html>; style.css holds both palettes. A classic script in <head>
// (not a module, which would run after the first paint), so a saved choice shows without a flash.
(() => {
  const KEY = 'sovrag.theme';
  const CHOICES = ['auto', 'light', 'dark'];

  const saved = () => {
    try {
      const v = localStorage.getItem(KEY);
      return CHOICES.includes(v) ? v : 'auto';
    } catch {
      return 'auto';
    }
  };
  const apply = (choice) => { document.documentElement.dataset.theme = choice; };
  const picker = () => document.getElementById('theme');

  apply(saved());

  document.addEventListener('DOMContentLoaded', () => {
    const select = picker();
    if (!select) return;
    select.value = saved();
    select.addEventListener('change', () => {
      const choice = CHOICES.includes(select.value) ? select.value : 'auto';
      try {
        if (choice === 'auto') localStorage.removeItem(KEY); else localStorage.setItem(KEY, choice);
      } catch { /* storage disabled: the choice holds for this page */ }
      apply(choice);
    });
  });

  // another tab changed it
  window.addEventListener('storage', (e) => {
    if (e.key !== KEY && e.key !== null) return;
    apply(saved());
    const select = picker();
    if (select) select.value = saved();
  });
})();
