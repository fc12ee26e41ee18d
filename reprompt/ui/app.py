"""The Gradio front end over :class:`~reprompt.ui.studio.Studio`.

One page: the prompt, a rewrite on/off switch, candidates, seed and images; the reasoning, the original
and the enhanced prompt (editable: "Render edited prompt" renders your version with the same seeds);
original and rewrite side by side; downloads of the turn's ``record.json`` and a zip of everything; and
the session's history (click a row to bring a turn back). Every element the browser test touches has
an ``elem_id``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no telemetry, no version check

import gradio as gr  # noqa: E402

from reprompt.backbones.base import RenderSettings  # noqa: E402
from reprompt.errors import RepromptError  # noqa: E402
from reprompt.integrations.common import guard_modes  # noqa: E402
from reprompt.model_spec import ModelSpec  # noqa: E402
from reprompt.ui import UI_PORT  # noqa: E402
from reprompt.ui.studio import MAX_CANDIDATES, MAX_IMAGES, Studio, Turn, describe  # noqa: E402
from reprompt.utils.endpoints import LOCALHOST, is_loopback  # noqa: E402

HISTORY_HEADERS = ["#", "kind", "original", "rendered prompt", "seed", "fallback"]

CSS = """
#reasoning textarea, #enhanced textarea, #original textarea { font-size: 0.95em; }
"""


def _opt_int(v: Any) -> int | None:
    return None if v in (None, "", 0) else int(v)


def _opt_float(v: Any) -> float | None:
    return None if v in (None, "") else float(v)


def _history_rows(turns: list[Turn]) -> list[list[Any]]:
    return [
        [
            t.number,
            t.kind,
            t.original,
            t.rendered_prompt,
            t.seeds[0],
            "yes" if t.kind == "rewrite" and t.rewrite.fallback else "",
        ]
        for t in reversed(turns)
    ]


def _model_box(studio: Studio, kind: str, info: str) -> gr.Textbox:
    """The policy's or the backbone's name (fixed when others can reach the UI)."""
    name = studio.spec.policy.name if kind == "policy" else studio.spec.backbone.name
    return gr.Textbox(
        value=name, label=kind.title(), info=info, interactive=studio.allow_model_change, elem_id=kind
    )


def _gallery(label: str, elem_id: str) -> gr.Gallery:
    """One column of same-seed images (the original's or the rewrite's)."""
    return gr.Gallery(
        label=label,
        columns=2,
        format="png",
        elem_id=elem_id,
        height="auto",
        object_fit="contain",
        preview=False,
    )


def _candidate_choices(turn: Turn) -> list[str]:
    return [f"{c.candidate + 1}: {c.prompt}" for c in turn.candidates]


def _show(turn: Turn, turns: list[Turn]) -> tuple:
    """Every output component's value for one turn, in the order of ``outputs`` in :func:`build_app`."""
    choices = _candidate_choices(turn)
    show_cands = len(choices) > 1
    chosen = next(
        (ch for ch, c in zip(choices, turn.candidates, strict=True) if c.prompt == turn.rewrite.prompt), None
    )
    left_label = f"Original prompt — seed {turn.seeds[0]}" + (
        f"…{turn.seeds[-1]}" if len(turn.seeds) > 1 else ""
    )
    right_label = {
        "rewrite": "Enhanced prompt",
        "edit": "Your edited prompt",
        "candidate": f"Candidate {turn.rewrite.candidate + 1}",
        "original": "Rewrite off",
    }[turn.kind]
    return (
        turn.rewrite.reasoning if turn.kind != "original" else "",
        turn.original,
        turn.rewrite.prompt,
        describe(turn),
        gr.update(value=[str(p) for p in turn.original_paths], label=left_label),
        gr.update(value=[str(p) for p in turn.rewritten_paths] or None, label=f"{right_label} — same seeds"),
        [str(turn.record_path), str(turn.zip_path)],
        _history_rows(turns),
        turns,
        turn,
        gr.update(choices=choices, value=chosen if show_cands else None, visible=show_cands),
    )


def build_app(studio: Studio, *, images: int = 1, seed: int = 0) -> gr.Blocks:
    """The Blocks app (not launched), its fields filled from the studio's :class:`ModelSpec`."""
    gen, bb = studio.spec.generation, studio.spec.backbone.options
    with gr.Blocks(title="reprompt", analytics_enabled=False) as demo:
        gr.Markdown(
            "## reprompt — reasoning prompt rewriting\n"
            "A small language model plans your scene and rewrites the prompt; both prompts are rendered "
            "with **the same seeds**, so any difference comes from the rewrite. Edit the enhanced prompt "
            "and render it again."
        )
        with gr.Row(equal_height=True):
            prompt = gr.Textbox(
                label="Prompt",
                placeholder="a photo of a sofa below a vase",
                lines=2,
                scale=5,
                elem_id="prompt",
            )
            with gr.Column(scale=1, min_width=160):
                go = gr.Button("Enhance & render", variant="primary", elem_id="enhance-btn")
                rewrite_on = gr.Checkbox(value=True, label="Rewrite", elem_id="rewrite-toggle")
        with gr.Row():
            candidates = gr.Slider(
                1, MAX_CANDIDATES, value=max(1, gen.num_candidates), step=1, label="Candidates"
            )
            seed_box = gr.Number(value=seed, precision=0, label="Seed (image k uses seed+k)", elem_id="seed")
            n_images = gr.Slider(1, MAX_IMAGES, value=images, step=1, label="Images", elem_id="images")
            modes = guard_modes()
            guard_box = gr.Dropdown(
                list(modes) or ["off"],
                value=gen.guard if modes else "off",
                label="Intent guard",
                info="keep the prompt's objects, counts, colors, quoted text, names",
                visible=bool(modes),
                elem_id="guard",
            )
        with gr.Accordion("Policy and backbone settings", open=False):
            with gr.Row():
                policy_name = _model_box(
                    studio,
                    "policy",
                    "none, smollm2-sketch, qwen2.5-3b, a folder, or an OpenAI-compatible URL",
                )
                temperature = gr.Number(
                    value=gen.temperature, label="Temperature", info="0 = greedy; candidates > 1 need > 0"
                )
                top_p = gr.Number(value=gen.top_p, label="Top-p")
                max_new = gr.Number(value=gen.max_new_tokens, precision=0, label="Max new tokens")
                policy_seed = gr.Number(value=gen.seed, precision=0, label="Sampling seed (empty = random)")
            with gr.Row():
                backbone_name = _model_box(
                    studio,
                    "backbone",
                    "sketch (offline simulator), flux-dev, sd3, sdxl, … or a diffusers folder",
                )
                width = gr.Number(value=bb.width, precision=0, label="Width (empty = backbone default)")
                height = gr.Number(value=bb.height, precision=0, label="Height (empty = default)")
                steps = gr.Number(value=bb.steps, precision=0, label="Steps (diffusers; empty = default)")
                guidance = gr.Number(value=bb.guidance, label="Guidance (diffusers; empty = default)")
        with gr.Row():
            reasoning = gr.Textbox(label="Reasoning", lines=3, interactive=False, elem_id="reasoning")
        cand_pick = gr.Radio(
            label="Candidates (pick one, then render it)", visible=False, elem_id="candidates"
        )
        with gr.Row(equal_height=True):
            original = gr.Textbox(label="Original prompt", lines=4, interactive=False, elem_id="original")
            with gr.Column():
                enhanced = gr.Textbox(
                    label="Enhanced prompt (editable)", lines=4, interactive=True, elem_id="enhanced"
                )
                rerender = gr.Button("Render edited prompt", elem_id="render-edit-btn")
        status = gr.Markdown(elem_id="status")
        with gr.Row():
            left = _gallery("Original prompt", "original-images")
            right = _gallery("Enhanced prompt", "rewritten-images")
        downloads = gr.File(
            label="Download: record.json and a zip of images + record",
            file_count="multiple",
            elem_id="downloads",
            interactive=False,
        )
        with gr.Accordion("History of this session (click a row to show it again)", open=True):
            history = gr.Dataframe(
                headers=HISTORY_HEADERS,
                interactive=False,
                wrap=True,
                elem_id="history",
                value=[],
                column_widths=["6%", "9%", "30%", "43%", "6%", "6%"],
                max_height=360,
            )
        turns_state = gr.State([])
        current = gr.State(None)

        outputs = [
            reasoning,
            original,
            enhanced,
            status,
            left,
            right,
            downloads,
            history,
            turns_state,
            current,
            cand_pick,
        ]

        def on_enhance(
            text,
            do_rewrite,
            n_cand,
            seed_v,
            n_img,
            guard_mode,
            pol,
            temp,
            tp,
            mnt,
            pseed,
            bb,
            w,
            h,
            st,
            gd,
            turns,
            progress=gr.Progress(),  # noqa: B008
        ):
            try:
                settings = RenderSettings(_opt_int(w), _opt_int(h), _opt_int(st), _opt_float(gd))
                turn = studio.enhance(
                    text,
                    rewrite=bool(do_rewrite),
                    seed=int(seed_v or 0),
                    num_images=int(n_img),
                    candidates=int(n_cand),
                    temperature=_opt_float(temp),
                    top_p=_opt_float(tp),
                    max_new_tokens=_opt_int(mnt),
                    policy_seed=None if pseed in (None, "") else int(pseed),
                    guard=guard_mode if guard_modes() else None,
                    settings=settings,
                    policy=pol,
                    backbone=bb,
                    progress=lambda f, d: progress(f, desc=d),
                )
            except RepromptError as e:
                raise gr.Error(str(e)) from None
            turns = [*turns, turn]
            return _show(turn, turns)

        def on_edit(text, turn, turns, progress=gr.Progress()):  # noqa: B008
            if turn is None:
                raise gr.Error("enhance a prompt first; then edit the enhanced prompt and render it again")
            try:
                new = studio.render_edit(turn, text, progress=lambda f, d: progress(f, desc=d))
            except RepromptError as e:
                raise gr.Error(str(e)) from None
            turns = [*turns, new]
            return _show(new, turns)

        def on_pick(choice, turn):
            if turn is None or not choice:
                return gr.update(), gr.update()
            k = int(str(choice).split(":", 1)[0]) - 1
            c = turn.candidates[k]
            return c.reasoning, c.prompt

        def on_history(turns, evt: gr.SelectData):
            row = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
            ordered = list(reversed(turns))
            if not 0 <= row < len(ordered):
                return tuple(gr.update() for _ in outputs)
            return _show(ordered[row], turns)

        inputs = [
            prompt,
            rewrite_on,
            candidates,
            seed_box,
            n_images,
            guard_box,
            policy_name,
            temperature,
            top_p,
            max_new,
            policy_seed,
            backbone_name,
            width,
            height,
            steps,
            guidance,
            turns_state,
        ]
        go.click(on_enhance, inputs, outputs)
        prompt.submit(on_enhance, inputs, outputs)
        rerender.click(on_edit, [enhanced, current, turns_state], outputs)
        cand_pick.input(on_pick, [cand_pick, current], [reasoning, enhanced])
        history.select(on_history, [turns_state], outputs)
    return demo


def launch(
    spec: ModelSpec,
    *,
    out_dir: str | Path,
    host: str = LOCALHOST,
    port: int = UI_PORT,
    images: int = 1,
    seed: int = 0,
    block: bool = True,
) -> tuple[gr.Blocks, str]:
    """Build and start the app; returns (app, local URL). ``block=False`` serves from a thread (tests)."""
    studio = Studio(spec, out_dir, allow_model_change=is_loopback(host))
    demo = build_app(studio, images=images, seed=seed)
    demo.queue(default_concurrency_limit=1, max_size=32)
    _, url, _ = demo.launch(
        server_name=host,
        server_port=port or _free_port(host),
        prevent_thread_lock=True,
        share=False,
        inbrowser=False,
        quiet=True,
        show_error=True,
        allowed_paths=[str(studio.out_dir)],
        footer_links=[],
        css=CSS,
        ssr_mode=False,
        mcp_server=False,
        enable_monitoring=False,
    )
    print(
        f"reprompt ui on {url} (policy {spec.policy.name}, backbone {spec.backbone.name}; "
        f"turns saved under {studio.out_dir})"
    )
    if not studio.allow_model_change:
        print(f"note: {host} is reachable from other machines; the policy and backbone are fixed to these")
    if block:
        try:
            demo.block_thread()
        finally:
            demo.close()
    return demo, url


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
