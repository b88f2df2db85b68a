// The console's one stylesheet, served from /assets/console.css (no CDN, no web font: the system's
// own fonts, with Japanese ones named). Laid out for a 1366×768 laptop first; below 760 px wide the
// tables scroll sideways and the forms stack, so a phone works too.
export const CONSOLE_CSS = `
*{box-sizing:border-box}
html{font-size:15px}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI","Hiragino Sans","Hiragino Kaku Gothic ProN","Noto Sans CJK JP","Yu Gothic",Meiryo,sans-serif;color:#1d2430;background:#f5f6f8;line-height:1.45}
header{display:flex;flex-wrap:wrap;align-items:center;gap:.4rem 1.2rem;padding:.55rem 1rem;background:#20324a;color:#fff}
header a{color:#fff;text-decoration:none}
header .brand{font-weight:700}
header nav{display:flex;gap:.2rem}
header nav a{padding:.25rem .6rem;border-radius:4px}
header nav a.on,header nav a:hover{background:#3a5475}
header .right{margin-left:auto;display:flex;align-items:center;gap:.8rem;font-size:.9rem}
header .right .link{color:#fff}
main{padding:1rem;max-width:1400px;margin:0 auto}
h1{font-size:1.35rem;margin:.2rem 0 1rem}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
a{color:#1558b0}
.inline{display:inline}
button,.button{font:inherit;padding:.35rem .8rem;border:1px solid #8a97a8;border-radius:4px;background:#fff;color:#1d2430;cursor:pointer;text-decoration:none;display:inline-block}
button.primary{background:#1558b0;border-color:#1558b0;color:#fff}
button.danger{background:#b3261e;border-color:#b3261e;color:#fff}
button.link{border:0;background:none;padding:0;text-decoration:underline;color:inherit}
input,select{font:inherit;padding:.3rem .4rem;border:1px solid #8a97a8;border-radius:4px;max-width:100%}
label{display:inline-flex;flex-direction:column;font-size:.85rem;gap:.15rem}
.filters{display:flex;flex-wrap:wrap;gap:.6rem;align-items:flex-end;background:#fff;padding:.7rem;border:1px solid #d5dae1;border-radius:6px;margin-bottom:.8rem}
.card{background:#fff;border:1px solid #d5dae1;border-radius:6px;padding:.8rem;margin-bottom:1rem}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e3e7ec;vertical-align:top}
th{background:#eef1f5;font-weight:600;white-space:nowrap}
td.nowrap,th.nowrap{white-space:nowrap}
td.subject{max-width:28rem;overflow-wrap:anywhere}
td.addr{max-width:16rem;overflow-wrap:anywhere}
tr:hover td{background:#f8fafc}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88rem;overflow-wrap:anywhere}
.muted{color:#5d6878}
.sym{display:inline-block;background:#eef1f5;border-radius:3px;padding:0 .3rem;margin:0 .2rem .15rem 0;font-family:ui-monospace,monospace;font-size:.8rem}
.state-held{color:#9a5b00;font-weight:600}
.state-released{color:#1f7a3a}
.state-deleted{color:#6b7280}
.warn{background:#fff4e5;border:1px solid #f0b35b;padding:.6rem;border-radius:6px;margin-bottom:1rem}
.error{background:#fdecea;border:1px solid #e5847c;padding:.6rem;border-radius:6px;margin-bottom:1rem}
.ok{background:#e8f5ec;border:1px solid #7fc497;padding:.6rem;border-radius:6px;margin-bottom:1rem}
.pager{display:flex;gap:.8rem;align-items:center;margin:.8rem 0}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin:.6rem 0}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}
dl.kv dt{font-weight:600;color:#3c4756}
dl.kv dd{margin:0;overflow-wrap:anywhere}
.headers div{padding-left:2em;text-indent:-2em}
.path{font-family:ui-monospace,monospace;font-size:.85rem}
.path .sep{color:#8a97a8;padding:0 .25rem}
pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:0;font-size:.88rem}
.preview{border:1px dashed #8a97a8;border-radius:6px;padding:.7rem;background:#fffdf7;max-height:32rem;overflow:auto;overflow-wrap:anywhere}
.preview .mm-link{color:#1558b0;text-decoration:underline dotted}
.preview .mm-link::after{content:" [" attr(data-href) "]";color:#5d6878;font-family:ui-monospace,monospace;font-size:.8rem;text-decoration:none}
.preview .mm-img{display:inline-block;border:1px dotted #8a97a8;padding:0 .3rem;color:#5d6878;font-size:.8rem}
.preview .mm-img::before{content:"[image " attr(data-src) "]"}
.preview table{width:auto}
.login{max-width:22rem;margin:3rem auto}
.login label{display:flex;margin-bottom:.7rem}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:1rem}
.chart svg{width:100%;height:auto;display:block}
.legend{display:flex;flex-wrap:wrap;gap:.8rem;font-size:.85rem;margin-top:.4rem}
.legend svg{vertical-align:-1px}
@media (max-width:760px){
  html{font-size:14px}
  main{padding:.6rem}
  header .right{margin-left:0;width:100%;justify-content:space-between}
  .filters label{flex:1 1 45%}
  .charts{grid-template-columns:1fr}
  dl.kv{grid-template-columns:1fr}
  dl.kv dt{margin-top:.4rem}
  td.subject{min-width:12rem}
}
`;
