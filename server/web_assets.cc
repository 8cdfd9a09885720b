#include "server/web_assets.h"

#include <string>

namespace boxcar::server {

namespace {

constexpr std::string_view kStylesheet = R"css(
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{padding:.3em .8em;text-align:left;border-bottom:1px solid #ddd}
code,pre{font:13px ui-monospace,monospace}
pre{background:#f6f6f6;padding:1em;overflow:auto;max-height:70vh;white-space:pre-wrap}
nav{float:right}p.failed{color:#cf222e}form.inline{display:inline}form.filters{margin:1em 0}
.badge{display:inline-block;padding:0 .5em;border-radius:.8em;color:#fff;background:#777}
.badge.success{background:#1a7f37}.badge.failed,.badge.error,.badge.oom,.badge.timeout{background:#cf222e}
.badge.running{background:#9a6700}
ol.graph{display:flex;gap:1.5em;list-style:none;padding:0;align-items:flex-start}
ol.graph>li>ul{list-style:none;padding:0;margin:0}
ol.graph>li>ul>li{margin:.3em 0}
ol.graph a.step{display:block;border:2px solid #777;border-radius:.4em;padding:.3em .6em;
 text-decoration:none;color:#222;min-width:8em}
ol.graph a.step.success{border-color:#1a7f37}ol.graph a.step.running{border-color:#9a6700}
ol.graph a.step.failed,ol.graph a.step.error,ol.graph a.step.oom,ol.graph a.step.timeout{border-color:#cf222e}
ol.graph small{color:#555;display:block}
.b{font-weight:bold}
.f0{color:#000}.f1{color:#c00}.f2{color:#080}.f3{color:#a60}.f4{color:#00c}.f5{color:#a0a}
.f6{color:#088}.f7{color:#999}.f8{color:#555}.f9{color:#f33}.f10{color:#3c3}.f11{color:#cc0}
.f12{color:#33f}.f13{color:#f3f}.f14{color:#3cc}.f15{color:#fff}
.g0{background:#000}.g1{background:#c00}.g2{background:#080}.g3{background:#a60}.g4{background:#00c}
.g5{background:#a0a}.g6{background:#088}.g7{background:#bbb}.g8{background:#555}.g9{background:#f33}
.g10{background:#3c3}.g11{background:#cc0}.g12{background:#33f}.g13{background:#f3f}
.g14{background:#3cc}.g15{background:#fff}
)css";

// The job page's live log: one event stream for the whole job (one follower slot), each
// event's lines appended to the section of its step. Log text only ever reaches the page as
// textContent; classes come from the server's fixed set. Without this script the page still
// shows the log as it was when loaded.
constexpr std::string_view kJobScript = R"js('use strict';
(function () {
  const root = document.getElementById('logs');
  if (!root || root.dataset.live !== '1') return;
  const status = document.getElementById('live-status');
  const sections = new Map();
  for (const pre of root.querySelectorAll('pre[data-step]')) sections.set(pre.dataset.step, pre);
  function sectionOf(step) {
    let pre = sections.get(step);
    if (pre) return pre;
    const section = document.createElement('section');
    const title = document.createElement('h3');
    title.textContent = step;
    pre = document.createElement('pre');
    pre.dataset.step = step;
    section.append(title, pre);
    root.append(section);
    sections.set(step, pre);
    return pre;
  }
  function append(pre, lines) {
    for (const line of lines) {
      for (const [classes, text] of line) {
        if (classes) {
          const span = document.createElement('span');
          span.className = classes;
          span.textContent = text;
          pre.append(span);
        } else {
          pre.append(document.createTextNode(text));
        }
      }
      pre.append(document.createTextNode('\n'));
    }
  }
  function say(text) { if (status) status.textContent = text; }
  const source = new EventSource(root.dataset.events + '?offset=' + encodeURIComponent(root.dataset.offset));
  source.addEventListener('open', () => say('following the log live'));
  source.addEventListener('log', (e) => {
    const chunk = JSON.parse(e.data);
    append(sectionOf(chunk.step || '(job)'), chunk.lines);
  });
  source.addEventListener('end', (e) => {
    source.close();
    const end = JSON.parse(e.data);
    const badge = document.getElementById('job-state');
    if (badge) {
      badge.textContent = end.state;
      badge.className = 'badge ' + end.state;
    }
    say('the job ended: ' + end.state + '; reload the page for its steps and artifacts');
  });
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED) say('live log stopped; reload the page');
  });
})();
)js";

void serve(Router& router, std::string_view path, std::string_view body, const char* type) {
  router.add(http::verb::get, std::string(path),
             [body, type](HttpRequest&, std::shared_ptr<Responder> res) {
               HttpResponse r = HttpResponse::text(200, std::string(body), type);
               r.headers.emplace_back("X-Content-Type-Options", "nosniff");
               r.headers.emplace_back("Cache-Control", "no-cache");
               res->reply(std::move(r));
             });
}

}  // namespace

void add_web_asset_routes(Router& router) {
  serve(router, kStylesheetPath, kStylesheet, "text/css; charset=utf-8");
  serve(router, kJobScriptPath, kJobScript, "text/javascript; charset=utf-8");
}

}  // namespace boxcar::server
