"""The pages a user works from: one workflow as a DAG with its actions and live updates, finding workflows, and the
carousel over time. ``html.py`` keeps the static overview (no script, good for files and mail); these pages carry
one small inline script (no library, no external URL) that polls the live JSON and posts the action forms.

Everything from the database goes through ``esc``; data handed to the script is JSON with ``<``, ``>`` and ``&``
escaped, so no name can close the script element.
"""

from __future__ import annotations

import json
from typing import Mapping
from urllib.parse import quote, urlencode

from . import dag as dag_layout
from . import plots
from .actions import ACTIONS, WORKFLOW_ACTIONS
from .html import _COLOURS, _CSS, _GREY, _carousel_section, _counts_text, _short, badge, esc, fill_bar, human_bytes, status_bar
from .snapshot import duration
from .identity import Identity

_PAGE_CSS = """
.who{font-size:12px;color:#dfe6ee}.who b{color:#fff}.ro{color:#ffd180}
form.search{display:flex;gap:4px;margin-left:auto}form.search input,form.search select{font:12px system-ui;padding:2px 4px}
.actions{display:flex;flex-wrap:wrap;gap:6px;margin-top:8px}.actions form{margin:0}
button{font:12px system-ui;padding:3px 10px;border:1px solid #9aa4b1;border-radius:4px;background:#fff;cursor:pointer}
button.danger{border-color:#c62828;color:#c62828}button:hover{background:#eef3fb}
#action-result{margin-top:6px;padding:5px 9px;border-radius:4px;display:none}
#action-result.queued{display:block;background:#e8f5e9;border:1px solid #2e7d32}
#action-result.refused,#action-result.error{display:block;background:#ffebee;border:1px solid #c62828}
#confirm{position:fixed;top:30%;left:50%;transform:translate(-50%,0);background:#fff;border:2px solid #c62828;border-radius:6px;
padding:14px 18px;box-shadow:0 6px 30px rgba(0,0,0,.3);z-index:10;max-width:520px}
#dag-wrap{overflow:auto;max-height:78vh;border:1px solid #eef0f3;background:#fbfcfd}
svg.dag text{font:11.5px system-ui,sans-serif;pointer-events:none}svg.dag .nm{font-weight:600}
svg.dag g.node{cursor:pointer}svg.dag g.node rect.box{stroke:#1d2330;stroke-width:.6}
svg.dag g.node.sel rect.box{stroke-width:3}svg.dag g.node[data-status=skipped] rect.box{stroke-dasharray:4 3}
svg.dag path.edge{fill:none;stroke:#7a8290;stroke-width:1.3}svg.dag path.edge.cond{stroke-dasharray:5 4;stroke:#8e24aa}
svg.dag rect.frame{fill:#eef3fb;stroke:#90a4c0;stroke-dasharray:3 3}svg.dag text.fl{font-size:11px;fill:#34507a}
svg.dag a text{pointer-events:auto;text-decoration:underline}
svg.dag g.node.crit rect.box{stroke:#ff6f00;stroke-width:4}svg.dag path.edge.crit{stroke:#ff6f00;stroke-width:3.2}
svg.dag g.frame.crit rect.frame{stroke:#ff6f00;stroke-width:2.5;stroke-dasharray:none}
svg.dag text.cl{font-size:10.5px;fill:#8e24aa;font-style:italic;paint-order:stroke;stroke:#fbfcfd;stroke-width:3px}
.cp{margin-top:6px;font-size:12.5px}.cp b{color:#e65100}.crit-key{display:inline-block;width:22px;height:0;border-top:3px solid #ff6f00;vertical-align:middle}
.stg td{font-size:11.5px}.stg .fill{min-width:90px}
#node-panel{display:none;margin-top:8px}#node-panel.open{display:block}
.live{font-size:11.5px;color:#5a6372}
"""

_SCRIPT = r"""
(function(){
const D=JSON.parse(document.getElementById('wf-data').textContent);
const AGG=D.aggregate, COL=D.colours, GREY=D.grey;
let cursor=D.cursor, nSteps=D.n_steps, steps=D.steps, nodes=D.nodes, pending=null;
const $=id=>document.getElementById(id);
function colour(st){return COL[st]||GREY;}
function agg(counts){for(const s of AGG){if(counts[s])return s;}const k=Object.keys(counts);return k.length?k.sort()[0]:'defined';}
function setBadge(el,st){const c=colour(st);el.textContent=st;el.style.background=c[0];el.style.color=c[1];}
function countsText(c){return Object.entries(c).map(([s,n])=>n+' '+s).join(' · ');}
function redrawNode(id){
  const n=nodes[id]; if(!n) return; const g=document.querySelector('g.node[data-node="'+CSS.escape(id)+'"]'); if(!g) return;
  const counts={}; for(const sid of n.step_ids){const s=steps[sid]; if(s) counts[s.status]=(counts[s.status]||0)+1;}
  const st=Object.keys(counts).length?agg(counts):n.status; const c=colour(st);
  g.dataset.status=st; const r=g.querySelector('rect.box'); r.setAttribute('fill',c[0]);
  g.querySelectorAll('text').forEach(t=>t.setAttribute('fill',c[1]));
  const line=g.querySelector('text.st'); if(line) line.textContent=n.step_ids.length>1?short(countsText(counts),34):st;
  if(n.step_ids.length==1){const s=steps[n.step_ids[0]]; const tk=g.querySelector('.tk');
    const why=s&&s.status==='skipped'&&s.skip_reason; if(why&&line) line.textContent='skipped, as:';
    if(tk&&s){tk.textContent=why?(why.length>34?why.slice(0,33)+'…':why):s.jedi_task_id?('task '+s.jedi_task_id+' '+(s.jedi_status||'')):'no JEDI task';}}
}
function short(t,n){return t.length>n?t.slice(0,n-1)+'…':t;}
function template(key){return key.split('/').map(seg=>seg.match(/^(.*?)(?:s\d+)?(?:i\d+)?$/)[1]).join('/');}
function redrawFrame(id){
  const f=document.querySelector('g.frame[data-frame="'+CSS.escape(id)+'"] tspan.fs'); if(!f) return;
  const counts={}; for(const s of Object.values(steps)){if(!s.node&&template(s.node_key)===id) counts[s.status]=(counts[s.status]||0)+1;}
  if(Object.keys(counts).length) f.textContent=agg(counts);}
function showResult(status,msg){const r=$('action-result'); r.className=status; r.dataset.status=status; r.textContent=msg;}
function renderCommands(list){const tb=$('commands-body'); if(!tb) return; tb.innerHTML='';
  for(const c of list){const tr=document.createElement('tr'); tr.dataset.status=c.status;
    for(const v of [c.command_id,c.command+(c.params&&c.params.step?' '+c.params.step:''),c.status,c.requester||'',c.message||'',c.created||'']){
      const td=document.createElement('td'); td.textContent=v; td.className='small'; tr.appendChild(td);}
    tb.appendChild(tr);}}
async function reloadDag(){
  const r=await fetch(D.dag_url+(location.search||''),{headers:{'Accept':'text/html'}}); if(!r.ok) return;
  const box=document.createElement('div'); box.innerHTML=await r.text();
  const data=JSON.parse(box.querySelector('script.dag-data').textContent);
  $('dag-wrap').innerHTML=''; $('dag-wrap').appendChild(box.querySelector('svg'));
  nodes=data.nodes; steps=data.steps; nSteps=data.n_steps; D.staging=data.staging; bindNodes(); if(data.critical_path) applyCritical(data.critical_path);
}
function esc(t){const d=document.createElement('span'); d.textContent=t==null?'':String(t); return d.innerHTML;}
function critText(cp,marked){
  if(!cp) return ''; if(cp.error) return 'critical path unknown: '+esc(cp.error);
  if(!cp.n_critical) return cp.unknown?('remaining time not known yet: '+cp.unknown+' step(s) to run and none of their like has ended in this workflow (estimates come from ended copies or steps of the same type)'):'nothing left to run';
  const names=Object.entries(nodes).filter(([k])=>marked.has(k)).sort((a,b)=>a[1].layer-b[1].layer||a[1].row-b[1].row).map(([k,n])=>esc(n.name));
  let t='<span class="crit-key"></span> critical path: <b>'+(names.length?names.join(' → '):cp.n_critical+' step(s)')+'</b> ('+cp.n_critical+' step(s)), estimated remaining <b>'+esc(cp.remaining)+'</b> (ends around '+esc(cp.eta)+' UTC)';
  if(cp.unknown) t+='; at least, as '+cp.unknown+' step(s) have no estimate yet';
  if(cp.overdue&&cp.overdue.length) t+='; '+cp.overdue.length+' step(s) run past their estimate ('+esc(cp.overdue.slice(0,3).join(', '))+')';
  return t;}
function applyCritical(cp){
  D.critical_path=cp; const marked=new Set(), frames=new Set(cp.templates||[]);
  for(const t of cp.templates||[]){const parts=t.split('/'); for(let i=1;i<=parts.length;i++){const p=parts.slice(0,i).join('/'); if(nodes[p]){marked.add(p);break;}}}
  document.querySelectorAll('svg.dag g.node').forEach(g=>g.classList.toggle('crit',marked.has(g.dataset.node)));
  document.querySelectorAll('svg.dag path.edge').forEach(e=>e.classList.toggle('crit',marked.has(e.dataset.source)&&marked.has(e.dataset.target)));
  document.querySelectorAll('svg.dag g.frame').forEach(f=>f.classList.toggle('crit',frames.has(f.dataset.frame)));
  $('cp').innerHTML=critText(cp,marked);}
async function poll(){
  try{
    const r=await fetch(D.live_url+'?since='+encodeURIComponent(cursor||''),{headers:{'Accept':'application/json'}});
    if(!r.ok){$('live').textContent='live updates paused: '+r.status; return;}
    const text=await r.text(); const L=JSON.parse(text); cursor=L.cursor;
    setBadge($('wf-status'),L.workflow.status); $('wf-status').dataset.status=L.workflow.status;
    $('wf-error').textContent=L.workflow.error_dialog||''; $('wf-error').style.display=L.workflow.error_dialog?'block':'none';
    renderCommands(L.commands);
    if(L.n_steps!==nSteps){await reloadDag();}
    const touched=new Set();
    const frames=new Set();
    for(const s of L.steps){const old=steps[s.step_id]; if(!old) continue; Object.assign(old,s); if(old.node) touched.add(old.node); else frames.add(template(old.node_key));}
    touched.forEach(redrawNode); frames.forEach(redrawFrame);
    if(L.critical_path) applyCritical(L.critical_path);
    if(L.staging&&L.staging_html!==undefined){D.staging=L.staging; const sec=$('staging-section'); if(sec) sec.outerHTML=L.staging_html;}
    if(L.prestages&&L.prestages_html!==undefined){const sec=$('prestage-section'); if(sec) sec.outerHTML=L.prestages_html;}
    if(touched.size){const all={}; for(const s of Object.values(steps)) all[s.status]=(all[s.status]||0)+1;
      const order=Object.keys(all).sort((a,b)=>AGG.indexOf(a)-AGG.indexOf(b)); const total=Object.values(all).reduce((a,b)=>a+b,0);
      const box=$('wf-steps'); box.querySelector('.counts').textContent=order.map(s=>all[s]+' '+s).join(' · ');
      const bar=box.querySelector('.bar'); if(bar){bar.innerHTML=''; for(const s of order){const sp=document.createElement('span');
        sp.style.width=(100*all[s]/total)+'%'; sp.style.background=colour(s)[0]; sp.title=all[s]+' '+s; bar.appendChild(sp);}}}
    const lv=$('live'); lv.textContent='updated '+new Date().toLocaleTimeString()+' · '+L.steps.length+' step(s) sent, '+touched.size+' node(s) changed'+(L.full?' (full resync)':'');
    lv.dataset.bytes=text.length; lv.dataset.steps=L.steps.length; lv.dataset.full=L.full?'1':'0';
    if(!L.full){lv.dataset.maxBytes=Math.max(+(lv.dataset.maxBytes||0),text.length); lv.dataset.maxSteps=Math.max(+(lv.dataset.maxSteps||0),L.steps.length);}
    document.body.dataset.polls=(+(document.body.dataset.polls||0)+1);
  }catch(e){$('live').textContent='live updates failed: '+e;}
}
async function send(form,confirmed){
  const body=new URLSearchParams(new FormData(form)); if(confirmed) body.set('confirmed','1');
  const r=await fetch(form.action,{method:'POST',body:body,headers:{'Accept':'application/json'}});
  let a; try{a=await r.json();}catch(e){a={status:'error',message:'HTTP '+r.status};}
  if(a.status==='confirm'){pending=form; $('confirm-text').textContent=a.message; $('confirm').hidden=false; $('confirm-yes').focus(); return;}
  showResult(a.status==='queued'?'queued':(a.status||'error'),(a.status==='queued'?'Queued: ':a.status==='refused'?'Refused: ':'')+(a.message||a.error||''));
  poll();
}
document.querySelectorAll('form.action').forEach(f=>f.addEventListener('submit',e=>{e.preventDefault();send(f,false);}));
document.addEventListener('submit',e=>{const f=e.target; if(f.classList&&f.classList.contains('action-dyn')){e.preventDefault();send(f,false);}});
if($('confirm-yes')){$('confirm-yes').addEventListener('click',()=>{$('confirm').hidden=true; if(pending) send(pending,true); pending=null;});
  $('confirm-no').addEventListener('click',()=>{$('confirm').hidden=true; pending=null; showResult('error','Cancelled: nothing was sent.');});}
function bindNodes(){document.querySelectorAll('svg.dag g.node').forEach(g=>g.addEventListener('click',ev=>{
  if(ev.target.closest('a')) return; openPanel(g.dataset.node);}));}
function openPanel(id){
  const n=nodes[id]; if(!n) return; document.querySelectorAll('g.node.sel').forEach(x=>x.classList.remove('sel'));
  const g=document.querySelector('g.node[data-node="'+CSS.escape(id)+'"]'); if(g) g.classList.add('sel');
  const p=$('node-panel'); p.className='open'; p.innerHTML='';
  const h=document.createElement('h3'); h.textContent=n.name+' ('+id+')'+(n.container?' — a sub-workflow, loop or scatter body':''); p.appendChild(h);
  if(g&&g.classList.contains('crit')){const c=document.createElement('div'); c.className='small'; c.innerHTML='<span class="crit-key"></span> on the critical path: it decides when the workflow ends'; p.appendChild(c);}
  if(n.condition_text){const c=document.createElement('div'); c.className='small'; c.textContent='runs when '+n.condition_text; p.appendChild(c);}
  if(n.container){const a=document.createElement('a'); a.href=n.toggle; a.textContent=n.opened?'close this body':'open this body'; p.appendChild(a);}
  const ul=document.createElement('ul');
  for(const sid of n.step_ids.slice(0,50)){const s=steps[sid]; const li=document.createElement('li');
    li.textContent=s.node_key+': '+s.status;
    if(s.jedi_task_id){li.append(' · JEDI task ');
      if(D.task_url){const a=document.createElement('a'); a.href=D.task_url.replace('{task_id}',s.jedi_task_id); a.target='_blank'; a.rel='noopener';
        a.textContent=s.jedi_task_id; li.appendChild(a);} else li.append(String(s.jedi_task_id));
      li.append(' '+(s.jedi_status||''));}
    if(s.status==='skipped') li.append(' · skipped: '+(s.skip_reason||'no reason recorded'));
    for(const q of (D.staging[sid]||[])){const d=document.createElement('div'); d.className='small stg';
      d.textContent='staging '+q.dataset+': '+q.status+', '+q.files_staged+'/'+q.files_total+' files, '+(q.bytes_total?Math.round(100*q.bytes_staged/q.bytes_total):0)+'% of bytes, '+(q.tape||'no tape yet')+(q.error?' · '+q.error:''); li.appendChild(d);}
    if(s.error_dialog){const e=document.createElement('div'); e.className='err'; e.textContent=s.error_dialog; li.appendChild(e);}
    ul.appendChild(li);}
  if(n.step_ids.length>50){const li=document.createElement('li'); li.textContent='… '+(n.step_ids.length-50)+' more'; ul.appendChild(li);}
  p.appendChild(ul);
  if(D.csrf&&n.step_name){const f=document.createElement('form'); f.method='post'; f.action=D.action_url; f.className='action-dyn';
    for(const [k,v] of [['csrf',D.csrf],['command','rerun'],['step',n.step_name]]){const i=document.createElement('input'); i.type='hidden'; i.name=k; i.value=v; f.appendChild(i);}
    const b=document.createElement('button'); b.className='danger'; b.textContent='Rerun from here ('+n.step_name+')'; b.dataset.command='rerun'; f.appendChild(b); p.appendChild(f);}
}
bindNodes();
setInterval(poll,D.poll_ms);
})();
"""


def _json_for_script(value) -> str:
    return json.dumps(value, default=str, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _page(title: str, header: str, body: str, script: str = "") -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{esc(title)}</title>"
        f"<style>{_CSS}{_PAGE_CSS}{plots.CHART_CSS}</style></head><body>{header}<main>{body}</main>{script}</body></html>\n"
    )


def _header(trail: str, identity: Identity | None, generated_at: str | None) -> str:
    if identity is not None:
        fq = f" ({esc(', '.join(identity.fqans))})" if identity.fqans else ""
        who = (f'<span class="who">signed in as <b>{esc(identity.dn)}</b>{fq} · '
               f'<a href="/workflows?user={esc(quote(identity.user_name, safe=""))}">my workflows</a></span>')
    else:
        who = '<span class="who ro" id="read-only">read-only: the front end sent no verified identity</span>'
    search = (
        '<form class="search" method="get" action="/workflows"><input name="name" placeholder="name contains" size="14">'
        '<input name="task" placeholder="JEDI task id" size="10"><input name="user" placeholder="user" size="10">'
        '<select name="status"><option value="">any status</option>'
        + "".join(f"<option>{s}</option>" for s in ("running", "paused", "finishing", "cancelling", "done", "finished", "failed", "cancelled", "parsed"))
        + '</select><button>find</button></form>'
    )
    snap = f'<span class="meta">snapshot {esc(generated_at)} UTC</span>' if generated_at else ""
    return (f'<header><h1><a href="/">pandajedi_wf monitor</a>{trail}</h1>{snap}{who}'
            f'<a href="/workflows">workflows</a><a href="/carousel">carousel</a>{search}</header>')


# ---- the DAG ------------------------------------------------------------------------------------------------


def _toggle_url(workflow_id: int, opened: list[str], node: str) -> str:
    now_open = set(opened) ^ {node}
    if node not in now_open:  # closing also closes what is inside
        now_open = {o for o in now_open if not o.startswith(node + "/")}
    return f"/workflow/{workflow_id}?" + urlencode({"open": ",".join(sorted(now_open)) or "-"})


def dag_svg(layout: Mapping, task_url: str | None) -> str:
    """The DAG as SVG: a ``g.node`` per node (status written in it, colour by status), a ``path.edge`` per edge."""
    w, h = dag_layout.NODE_W, dag_layout.NODE_H
    by_id = {n["id"]: n for n in layout["nodes"]}
    parts = [
        f'<svg class="dag" xmlns="http://www.w3.org/2000/svg" width="{layout["width"]}" height="{layout["height"]}" '
        f'viewBox="0 0 {layout["width"]} {layout["height"]}" role="img" aria-label="workflow DAG">'
        '<defs><marker id="arr" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto">'
        '<path d="M0,0L10,5L0,10z" fill="#7a8290"/></marker></defs>'
    ]
    for f in layout["frames"]:
        parts.append(
            f'<g class="frame{" crit" if f.get("critical") else ""}" data-frame="{esc(f["id"])}"><rect class="frame" x="{f["x"]}" y="{f["y"]}" width="{f["w"]}" height="{f["h"]}" rx="8"/>'
            f'<text class="fl" x="{f["x"] + 8}" y="{f["y"] + 13}">{esc(_short(f["name"], 40))}'
            f'{" ×" + str(f["copies"]) if f["copies"] > 1 else ""} · <tspan class="fs">{esc(f["status"])}</tspan></text></g>'
        )
    labels = [  # a conditional step's condition, above its box
        f'<text class="cl" data-target="{esc(n["id"])}" x="{n["x"] + 4}" y="{n["y"] - 4}">when {esc(_short(n["condition_text"], 34))}</text>'
        for n in layout["nodes"] if n.get("condition_text")
    ]
    for e in layout["edges"]:
        a, b = by_id[e["source"]], by_id[e["target"]]
        x1, y1, x2, y2 = a["x"] + w, a["y"] + h / 2, b["x"], b["y"] + h / 2
        mid = (x1 + x2) / 2
        parts.append(
            f'<path class="edge{" cond" if e["conditional"] else ""}{" crit" if e.get("critical") else ""}" data-source="{esc(e["source"])}" data-target="{esc(e["target"])}" '
            f'd="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2 - 2},{y2}" marker-end="url(#arr)"/>'
        )
    parts.extend(labels)
    for n in layout["nodes"]:
        bg, fg = _COLOURS.get(n["status"], _GREY)
        many = f' ×{n["n_steps"]}' if n["n_steps"] > 1 else ""
        kind = " ▸ body" if n["container"] else ""
        line2 = _counts_text(n["counts"]).replace(" · ", " · ") if n["n_steps"] > 1 else n["status"]
        if n.get("skip_reasons") and n["status"] == "skipped":
            line2, line3 = "skipped, as:", n["skip_reasons"][0]
        elif n["container"] and n["inner_counts"]:
            line3 = "body: " + ", ".join(f"{c} {s}" for s, c in n["inner_counts"].items())
        elif n["jedi_task_id"] is not None:
            line3 = f'task {n["jedi_task_id"]} {n["jedi_status"] or ""}'
        elif n["n_steps"] == 1:
            line3 = "no JEDI task"
        else:
            line3 = ""
        task = f'<text class="tk" x="8" y="52" fill="{fg}">{esc(_short(line3, 34))}</text>'
        if task_url and n["jedi_task_id"] is not None:
            task = f'<a href="{esc(task_url.format(task_id=n["jedi_task_id"]))}" target="_blank" rel="noopener">{task}</a>'
        parts.append(
            f'<g class="node{" crit" if n.get("critical") else ""}" data-node="{esc(n["id"])}" data-status="{esc(n["status"])}" '
            f'transform="translate({n["x"]},{n["y"]})">'
            f'<title>{esc(n["name"])} ({esc(n["id"])}): {esc(_counts_text(n["counts"]) if n["counts"] else n["status"])}'
            f'{esc(" · when " + n["condition_text"]) if n.get("condition_text") else ""}'
            f'{esc(" · skipped: " + "; ".join(n["skip_reasons"])) if n.get("skip_reasons") else ""}'
            f'{" · on the critical path" if n.get("critical") else ""}</title>'
            f'<rect class="box" width="{w}" height="{h}" rx="6" fill="{bg}"/>'
            f'<text class="nm" x="8" y="17" fill="{fg}">{esc(_short(n["name"], 24))}{many}{kind}</text>'
            f'<text class="st" x="8" y="34" fill="{fg}">{esc(_short(line2, 34))}</text>{task}</g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def dag_data(detail: Mapping) -> dict:
    layout = detail["dag"]
    wf_id = detail["workflow"]["workflow_id"]
    return {
        "nodes": {n["id"]: {"name": n["name"], "status": n["status"], "step_ids": n["step_ids"], "container": n["container"],
                            "step_name": n["step_name"], "opened": n["id"] in layout["opened"], "condition_text": n.get("condition_text"),
                            "layer": n["layer"], "row": n["row"],
                            "toggle": _toggle_url(wf_id, layout["opened"], n["id"])}
                  for n in layout["nodes"]},
        "steps": {str(s["step_id"]): {"node_key": s["node_key"], "status": s["status"], "jedi_status": s["jedi_status"],
                                      "jedi_task_id": s["jedi_task_id"], "error_dialog": s["error_dialog"],
                                      "skip_reason": s.get("skip_reason"),
                                      "node": layout["step_node"].get(s["step_id"])}
                  for s in detail["steps"]},
        "staging": detail.get("staging") or {},
        "critical_path": detail.get("critical_path"),
        "n_steps": layout["n_steps"],
    }


def dag_fragment(detail: Mapping, task_url: str | None) -> str:
    """What a redraw fetches: the SVG and its data (new steps appeared: a loop iteration, a scatter opened)."""
    return dag_svg(detail["dag"], task_url) + f'<script type="application/json" class="dag-data">{_json_for_script(dag_data(detail))}</script>'


def critical_text(cp: Mapping | None, names: list[str] | None = None) -> str:
    """What the page says of the critical path, through the drawn nodes ``names`` in order (the script writes the same
    words when it moves)."""
    if not cp:
        return ""
    if cp.get("error"):
        return f"critical path unknown: {esc(cp['error'])}"
    if not cp.get("n_critical"):
        if cp.get("unknown"):
            return (f"remaining time not known yet: {cp['unknown']} step(s) to run and none of their like has ended in this workflow "
                    "(estimates come from ended copies or steps of the same type)")
        return "nothing left to run"
    through = " → ".join(esc(n) for n in names) if names else f'{cp["n_critical"]} step(s)'
    text = (f'<span class="crit-key"></span> critical path: <b>{through}</b> ({cp["n_critical"]} step(s)), estimated remaining '
            f'<b>{esc(cp["remaining"])}</b> (ends around {esc(cp["eta"])} UTC)')
    if cp.get("unknown"):
        text += f"; at least, as {cp['unknown']} step(s) have no estimate yet"
    if cp.get("overdue"):
        text += f"; {len(cp['overdue'])} step(s) run past their estimate ({esc(', '.join(cp['overdue'][:3]))})"
    return text


def staging_section(staging: Mapping[str, list]) -> str:
    """The "Staging from tape" section (empty when no task of the workflow waits on the carousel); the live updates
    replace it whole when a request moved."""
    rows = []
    for entries in staging.values():
        for r in entries:
            files = fill_bar(r["files_staged"], r["files_total"], None, "files")
            nbytes = fill_bar(r["bytes_staged"], r["bytes_total"], None, "bytes")
            why = r["error"] or ""
            idle = f' ({duration(r["idle_seconds"])} ago)' if r["idle_seconds"] is not None else ""
            rows.append(
                f'<tr data-request="{r["request_id"]}" data-status="{esc(r["status"])}"><td>{esc(r["node_key"] or "")}</td><td>{r["jedi_task_id"]}</td>'
                f'<td>{esc(_short(r["dataset"], 60))}</td><td>{badge(r["status"])}{" <span class=muted>released</span>" if r["released"] else ""}</td>'
                f'<td>{files}</td><td>{nbytes}</td><td>{esc(r["tape"] or "-")} → {esc(r["destination"] or "-")}'
                f'{" · " + str(r["switches"]) + " switch(es)" if r["switches"] else ""}</td><td>{esc(r["last_progress"] or "-")}{esc(idle)}</td>'
                f'<td>{esc(_short(why, 200))}</td></tr>'
            )
    if not rows:
        return '<section class="wide" id="staging-section" hidden></section>'
    return (f'<section class="wide" id="staging-section"><h2>Staging from tape (data carousel)</h2><table class="stg" id="staging"><tr><th>step</th><th>JEDI task</th>'
            f'<th>dataset</th><th>request</th><th>files staged</th><th>bytes staged</th><th>tape → disk</th><th>last file (UTC)</th>'
            f'<th>last error (why switched or re-queued)</th></tr>{"".join(rows)}</table></section>')


def _due(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"in {duration(seconds)}" if seconds >= 0 else f"{duration(-seconds)} ago"


def prestage_section(prestages: list, truncated: bool = False) -> str:
    """The "Pre-staging from tape" section: the tape inputs of later steps planned when the workflow started, each
    with its need-by, its state and the staging request it made or joined (empty when nothing was planned)."""
    rows = []
    for p in prestages:
        if p["request_id"] is not None:
            how = "joined" if p["joined"] else "made"
            request = (f'<span class="small">{how} </span>{p["request_id"]} {badge(p["request_status"])}'
                       f'<div class="small">{esc(p["tape"] or "-")} → {esc(p["destination"] or "-")}</div>')
            staged = fill_bar(p["bytes_staged"], p["bytes_total"], None, "bytes")
        else:
            request, staged = '<span class="muted">none</span>', ""
        rows.append(
            f'<tr data-dataset="{esc(p["dataset"])}" data-state="{esc(p["state"])}" data-request="{p["request_id"] or ""}">'
            f'<td>{esc(_short(p["dataset"], 70))}</td><td class="small">{esc(p["node_key"])}</td>'
            f'<td class="small">{esc(p["need_by"] or "-")}<div class="muted">{esc(_due(p["due_in_seconds"]))}</div></td>'
            f'<td class="small">{esc(p["ready_by"] or "-")}</td><td>{badge(p["state"])}</td><td>{request}</td><td>{staged}</td>'
            f'<td class="small">{esc(p["released"] or "")}</td></tr>'
        )
    if not rows:
        return '<section class="wide" id="prestage-section" hidden></section>'
    cut = '<p class="warn">Only the earliest pre-stages are shown.</p>' if truncated else ""
    return (f'<section class="wide" id="prestage-section"><h2>Pre-staging from tape (planned when the workflow started)</h2>'
            f'<div class="small muted">datasets later steps read from tape, recalled ahead of the step: planned → queued → staging → done, '
            f'released once the workflow no longer needs them (ended, killed, the step skipped, or its task took the request over).</div>{cut}<table class="stg" id="prestages"><tr><th>dataset</th><th>first read by</th><th>need by (UTC)</th>'
            f'<th>ready by (UTC)</th><th>state</th><th>staging request</th><th>bytes staged</th><th>released (UTC)</th></tr>{"".join(rows)}</table></section>')


def prestage_requests_section(prestages: Mapping) -> str:
    """For the carousel page: the requests workflow pre-stages made or joined, and for which workflows."""
    rows = []
    for r in prestages.get("requests", []):
        workflows = "".join(
            f'<div data-workflow="{w["workflow_id"]}"><a href="/workflow/{w["workflow_id"]}">{w["workflow_id"]}</a> '
            f'{esc(_short(w["name"] or "", 40))} <span class="muted">{esc(w["user_name"] or "")}</span> · step {esc(w["node_key"])} · '
            f'need by {esc(w["need_by"] or "-")} · {badge(w["state"])}{" <span class=muted>joined</span>" if w["joined"] else ""}</div>'
            for w in r["workflows"]
        )
        rows.append(
            f'<tr data-request="{r["request_id"]}" data-status="{esc(r["status"] or "")}"><td class="small">{r["request_id"]}</td>'
            f'<td class="small">{esc(_short(r["dataset"], 60))}</td><td>{badge(r["status"])}</td>'
            f'<td>{fill_bar(r["bytes_staged"], r["bytes_total"], None, "bytes")}</td>'
            f'<td class="small">{esc(r["tape"] or "-")} → {esc(r["destination"] or "-")}</td>'
            f'<td class="small">{esc(r["need_by"] or "-")}</td><td class="small">{workflows}</td></tr>'
        )
    cut = '<p class="warn">Only the earliest pre-stages were read.</p>' if prestages.get("truncated") else ""
    table = (f'<table class="stg" id="prestage-requests"><tr><th>request</th><th>dataset</th><th>status</th><th>bytes staged</th>'
             f'<th>tape → disk</th><th>need by (UTC)</th><th>pre-stage of workflow</th></tr>{"".join(rows)}</table>'
             if rows else '<p class="muted">none: no workflow pre-stage is active or was released in the period</p>')
    return (f'<section class="wide" id="prestage-requests-section"><h2>Workflow pre-stages: requests recalled ahead of a later step</h2>'
            f'<div class="small muted">a request a task waits on has no need-by; a pre-stage\'s request is admitted behind every waiting '
            f'task\'s, earliest need-by first. Its workflows: those whose pre-stage made it or joined it.</div>{cut}{table}</section>')


def _action_forms(wf_id: int, csrf: str) -> str:
    forms = []
    for command in WORKFLOW_ACTIONS:
        label, confirm = ACTIONS[command]
        forms.append(
            f'<form class="action" method="post" action="/workflow/{wf_id}/command"><input type="hidden" name="csrf" value="{esc(csrf)}">'
            f'<input type="hidden" name="command" value="{command}"><button data-command="{command}"{" class=danger" if confirm else ""}>{esc(label)}</button></form>'
        )
    return f'<div class="actions" id="actions">{"".join(forms)}</div>'


def render_workflow_page(detail: Mapping, identity: Identity | None, csrf: str | None, task_url: str | None, poll_ms: int = 5000) -> str:
    wf = detail["workflow"]
    wf_id = wf["workflow_id"]
    layout = detail["dag"]
    data = dag_data(detail) | {
        "cursor": detail["cursor"], "aggregate": list(dag_layout.AGGREGATE_ORDER), "colours": _COLOURS, "grey": _GREY,
        "live_url": f"/workflow/{wf_id}/live", "dag_url": f"/workflow/{wf_id}/dag", "action_url": f"/workflow/{wf_id}/command",
        "csrf": csrf, "poll_ms": poll_ms, "task_url": task_url,
    }
    actions = _action_forms(wf_id, csrf) if identity is not None and csrf else '<p class="small muted" id="no-actions">Actions need a verified identity from the front end.</p>'
    failed = [s for s in detail["steps"] if s["error_dialog"]]
    errors = "".join(
        f'<tr><td class="small">{esc(s["node_key"])}</td><td>{esc(s["name"])}</td><td>{badge(s["status"])}</td>'
        f'<td class="small">{s["jedi_task_id"] or ""}</td><td><div class="err">{esc(_short(s["error_dialog"], 600))}</div></td></tr>'
        for s in failed[:100]
    )
    commands = "".join(
        f'<tr data-status="{esc(c["status"])}"><td class="small">{c["command_id"]}</td><td class="small">{esc(c["command"])}'
        f'{" " + esc((c["params"] or {}).get("step", "")) if isinstance(c["params"], dict) else ""}</td><td class="small">{esc(c["status"])}</td>'
        f'<td class="small">{esc(c["requester"] or "")}</td><td class="small">{esc(c["message"])}</td><td class="small">{esc(c["created"])}</td></tr>'
        for c in detail["commands"]
    )
    history = "".join(
        f'<tr><td class="small">{esc(h["time"])}</td><td class="small">{esc(h["entity"])}</td><td class="small">{esc(h["key"])}</td>'
        f'<td>{badge(h["from"]) if h["from"] else "<span class=muted>new</span>"} → {badge(h["to"])}</td>'
        f'<td class="small">{esc(h["why"])}</td><td class="small muted">{esc(h["actor"])}</td></tr>'
        for h in detail["history"][:100]
    )
    parent = f' · sub-workflow of <a href="/workflow/{wf["parent_workflow_id"]}">{wf["parent_workflow_id"]}</a>' if wf["parent_workflow_id"] else ""
    bg, fg = _COLOURS.get(wf["status"], _GREY)
    open_all = f"/workflow/{wf_id}?" + urlencode({"open": ",".join(layout["containers"]) or "-"})
    body = (
        f'<section class="wide"><h2>{esc(wf["name"])} <span class="badge" id="wf-status" data-status="{esc(wf["status"])}" '
        f'style="background:{bg};color:{fg}">{esc(wf["status"])}</span></h2>'
        f'<div class="small">id {wf_id} · user <a href="/workflows?user={esc(quote(wf["user_name"], safe=""))}">{esc(wf["user_name"])}</a> · '
        f'{esc(wf["language"] or "")} · output {esc(wf["out_ds"] or "-")} · created {esc(wf["created"])} UTC{parent}</div>'
        f'<div class="err" id="wf-error" style="display:{"block" if wf["error_dialog"] else "none"}">{esc(wf["error_dialog"] or "")}</div>'
        f'<div style="margin-top:6px" id="wf-steps">{status_bar(detail["steps_by_status"])}<div class="counts">{_counts_text(detail["steps_by_status"])}</div></div>'
        f'<div class="cp" id="cp">{critical_text(detail.get("critical_path"), [n["name"] for n in sorted(layout["nodes"], key=lambda n: (n["layer"], n["row"])) if n.get("critical")])}</div>'
        f'{actions}<div id="action-result" role="status"></div><div class="live" id="live">live updates every {poll_ms / 1000:g}s</div></section>'
        f'<section class="wide"><h2>DAG</h2><div class="small muted">{len(layout["nodes"])} nodes for {layout["n_steps"]} steps'
        f'{" (first steps only)" if detail["steps_truncated"] else ""}; copies of a scattered step and loop iterations are one node, '
        f'a sub-workflow is one node until opened; dashed purple edges lead to conditional steps (labelled with the condition), '
        f'dashed boxes were skipped (the reason in the box), thick orange marks the critical path. '
        f'<a href="{esc(open_all)}">open all</a> · <a href="/workflow/{wf_id}?open=-">close all</a> · '
        f'<a href="/workflow/{wf_id}/json">JSON</a></div>'
        f'<div id="dag-wrap">{dag_svg(layout, task_url)}</div><div id="node-panel"></div></section>'
        + staging_section(detail.get("staging") or {})
        + prestage_section(detail.get("prestages") or [], detail.get("prestages_truncated", False))
        + f'<section class="wide"><h2>Errors of failed steps</h2>'
        + (f'<table><tr><th>key</th><th>step</th><th>status</th><th>JEDI task</th><th>error</th></tr>{errors}</table>' if errors else '<p class="muted">none</p>')
        + '</section><section class="wide"><h2>Commands, newest first</h2><table><thead><tr><th>id</th><th>command</th><th>status</th><th>by</th>'
        f'<th>answer</th><th>sent (UTC)</th></tr></thead><tbody id="commands-body">{commands}</tbody></table></section>'
        f'<section class="wide"><h2>History, newest first</h2><table><tr><th>time (UTC)</th><th>what</th><th>key</th>'
        f'<th>change</th><th>why</th><th>by</th></tr>{history}</table></section>'
        '<div id="confirm" hidden><p id="confirm-text"></p><button id="confirm-yes" class="danger">Confirm</button> '
        '<button id="confirm-no">Cancel</button></div>'
    )
    script = f'<script type="application/json" id="wf-data">{_json_for_script(data)}</script><script>{_SCRIPT}</script>'
    return _page(f"workflow {wf_id}: {wf['name']}", _header(f" › workflow {wf_id}", identity, detail["generated_at"]), body, script)


def render_action_answer(workflow_id: int, answer: Mapping, identity: Identity | None, form: Mapping[str, str]) -> str:
    """The no-script path: the confirmation form, or the answer with a link back."""
    if answer["status"] == "confirm":
        hidden = "".join(f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in form.items() if k in ("csrf", "command", "step"))
        body = (f'<section class="wide"><h2>Please confirm</h2><p>{esc(answer["message"])}</p><form method="post" action="/workflow/{workflow_id}/command">'
                f'{hidden}<input type="hidden" name="confirmed" value="1"><button class="danger">Confirm</button> '
                f'<a href="/workflow/{workflow_id}">cancel</a></form></section>')
    else:
        body = (f'<section class="wide"><h2>{"Queued" if answer["status"] == "queued" else "Refused"}</h2><p id="answer">{esc(answer["message"])}</p>'
                f'<p><a href="/workflow/{workflow_id}">back to workflow {workflow_id}</a></p></section>')
    return _page(f"workflow {workflow_id}", _header(f" › workflow {workflow_id}", identity, None), body)


# ---- finding workflows --------------------------------------------------------------------------------------


def render_find(found: Mapping, identity: Identity | None) -> str:
    f = found["filters"]
    said = ", ".join(f"{k} {v!r}" for k, v in f.items() if v) or "all"
    rows = "".join(
        f'<tr><td class="num"><a href="/workflow/{r["workflow_id"]}">{r["workflow_id"]}</a></td>'
        f'<td><a href="/workflow/{r["workflow_id"]}">{esc(_short(r["name"], 70))}</a></td><td>{esc(r["user_name"])}</td>'
        f'<td>{badge(r["status"])}</td><td>{status_bar(r["steps_by_status"])}<div class="counts">{_counts_text(r["steps_by_status"])}</div>'
        + (f'<div class="err">{esc(_short(r["error_dialog"], 300))}</div>' if r["error_dialog"] else "")
        + f'</td><td class="small">{esc(r["changed"])}</td></tr>'
        for r in found["workflows"]
    )
    table = (f'<table id="found"><tr><th class="num">id</th><th>name</th><th>user</th><th>status</th><th>steps</th><th>changed (UTC)</th></tr>{rows}</table>'
             if rows else '<p class="muted">no workflow matches</p>')
    cut = '<p class="warn">Only the newest are shown; narrow the search.</p>' if found["truncated"] else ""
    body = f'<section class="wide"><h2>Workflows: {esc(said)}</h2>{cut}{table}</section>'
    return _page("workflows", _header(" › workflows", identity, found["generated_at"]), body)


# ---- the carousel over time ---------------------------------------------------------------------------------


def _count(v: float) -> str:
    return f"{v:,.0f}"


def _bytes(v: float) -> str:
    return human_bytes(v)


def _rate(v: float) -> str:
    return human_bytes(v) + "/s"


def render_carousel(view: Mapping, identity: Identity | None) -> str:
    c, h = view["carousel"], view["history"]
    tapes = {t["tape"]: t for t in c["tapes"]}
    times = h["times"]
    files = plots.line_chart(f"files in flight per tape (dashed: max files), last {h['hours']:g} h", times, h["files"], _count,
                             {t: tapes[t]["max_files"] for t in h["files"] if t in tapes})
    nbytes = plots.line_chart(f"bytes in flight per tape (dashed: byte window now), last {h['hours']:g} h", times, h["bytes"], _bytes,
                              {t: tapes[t]["byte_window"] for t in h["bytes"] if t in tapes})
    rate = plots.line_chart("throughput per tape (finished requests)", times, h["throughput"], _rate)
    limits = {b["destination"]: b["limit_bytes"] for b in c["buffers"]}
    buffer = plots.line_chart("disk buffer use per destination (dashed: limit)", times, h["buffer"], _bytes, limits)
    periods = " · ".join(f'<a href="/carousel?hours={n}">{label}</a>' for n, label in ((6, "6 h"), (24, "24 h"), (72, "3 days"), (168, "7 days")))
    cut = '<p class="warn">Only the newest requests were read; older intervals are missing.</p>' if h["truncated"] else ""
    charts = (f'<section class="wide"><h2>Data carousel over time</h2><div class="small muted">{periods} · from {esc(h["from"])} to '
              f'{esc(h["to"])} UTC, drawn from {h["requests_read"]} staging requests (a request counts in full from its start to '
              f'its last file; one the carousel switched counts on each tape for its time there) · <a href="/carousel/json">JSON</a></div>{cut}<div id="charts">{files}{nbytes}{rate}{buffer}</div></section>')
    prestaged = {r["request_id"]: r["workflows"] for r in (view.get("prestages") or {}).get("requests", [])}
    events = "".join(
        f'<tr data-status="{esc(e["status"])}"><td class="small">{esc(e["time"])}</td><td class="small">{e["request_id"]}'
        + "".join(f' <span class="muted">pre-stage of <a href="/workflow/{w["workflow_id"]}">{w["workflow_id"]}</a></span>' for w in prestaged.get(e["request_id"], []))
        + '</td>'
        f'<td class="small">{esc(_short(e["dataset"] or "", 60))}</td><td>{badge(e["status"])}</td>'
        f'<td class="small">{esc(e["from_tape"] + " → " + e["to_tape"]) if e["from_tape"] else ""}</td><td class="small">{esc(_short(e["reason"], 300))}</td></tr>'
        for e in h.get("events", [])
    )
    moves = (f'<section class="wide"><h2>Switched, re-queued and failed requests in the period, newest first</h2>'
             + (f'<table id="carousel-events"><tr><th>time (UTC)</th><th>request</th><th>dataset</th><th>to</th><th>tape</th><th>why</th></tr>{events}</table>'
                if events else '<p class="muted">none: no request changed tape, went back to the queue or failed</p>') + '</section>')
    body = charts + moves + prestage_requests_section(view.get("prestages") or {}) + _carousel_section(c).replace("<section>", '<section class="wide">', 1)
    return _page("data carousel", _header(" › data carousel", identity, view["generated_at"]), body)
