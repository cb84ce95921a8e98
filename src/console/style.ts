/** The console's one stylesheet: light by default, dark when the system asks for it; one column on a phone. */
export const CONSOLE_CSS = `
:root{--bg:#fafafa;--fg:#1b1f24;--muted:#5b6570;--card:#fff;--line:#d7dce1;--accent:#0b5fff;--ok:#137333;--bad:#b3261e;--warn:#9a6700;color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--bg:#111418;--fg:#e6e9ec;--muted:#9aa4ae;--card:#1a1f25;--line:#2d343c;--accent:#6ea2ff;--ok:#5cc27a;--bad:#ff7a70;--warn:#e0b44c}}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,sans-serif;background:var(--bg);color:var(--fg)}
a{color:var(--accent)}
:focus-visible{outline:2px solid var(--accent);outline-offset:2px}
header{display:flex;flex-wrap:wrap;gap:.5rem 1.25rem;align-items:center;padding:.6rem 1rem;border-bottom:1px solid var(--line);background:var(--card)}
header nav{display:flex;flex-wrap:wrap;gap:.25rem 1rem}
header nav a{text-decoration:none;font-weight:600}
header nav a[aria-current]{text-decoration:underline}
header .who{margin-left:auto;color:var(--muted)}
main{padding:1rem;max-width:1400px;margin:0 auto}
h1{font-size:1.3rem;margin:.2rem 0 .8rem}
h2{font-size:1.05rem;margin:1.2rem 0 .5rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.75rem;margin-bottom:1rem;overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600}
code,.mono{font-family:ui-monospace,monospace;font-size:.9em;word-break:break-all}
.muted{color:var(--muted)}
.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}
.chips{display:flex;flex-wrap:wrap;gap:.4rem;margin:.2rem 0}
.chip{border:1px solid var(--line);border-radius:99px;padding:.1rem .6rem;text-decoration:none;color:var(--fg)}
form.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end}
label{display:flex;flex-direction:column;gap:.15rem;color:var(--muted);font-size:.85rem}
input,select,button{font:inherit;padding:.35rem .5rem;border:1px solid var(--line);border-radius:4px;background:var(--bg);color:var(--fg)}
button{cursor:pointer;background:var(--accent);color:#fff;border-color:var(--accent)}
button.danger{background:var(--bad);border-color:var(--bad)}
form.inline{display:inline}
.timeline{display:flex;flex-wrap:wrap;gap:.3rem;list-style:none;padding:0;margin:.3rem 0}
.timeline li{border:1px solid var(--line);border-radius:4px;padding:.2rem .45rem}
.timeline li.stop{border-color:var(--bad);color:var(--bad);border-style:dashed}
.pager{display:flex;gap:1rem;align-items:center;margin-top:.5rem}
pre{white-space:pre-wrap;margin:0}
.narrow{max-width:34rem}
.error{border-color:var(--bad);color:var(--bad)}
@media (max-width:700px){main{padding:.5rem}td,th{padding:.25rem}.wide{display:none}}
`;
