"""Retrieval: query a saved BSODH + FAISS index with a face and see the top-K in Hamming space."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from dashboard import queries, retrieval_data, ui
from hashing.errors import HashingError

GRID_COLUMNS = 5

st.title("Retrieval")
settings = ui.settings()
engine = ui.quiet_engine()
recorded = queries.recorded_indexes(engine) if engine is not None else []
dirs = retrieval_data.candidate_dirs(settings.index_dirs, recorded)
if not dirs:
    st.info("No retrieval index configured.")
    trained = retrieval_data.latest_trained_run(engine) if engine is not None else None
    st.markdown(
        "Build one with a trained model's TorchScript export (only a train run exports weights), "
        f"then open it here:\n\n```bash\n{retrieval_data.setup_commands(trained, settings.db_url)}\n```"
    )
    st.caption("`automl index build --images DIR` indexes a folder of photos instead of `--data`.")
    st.stop()


def _format(image: object) -> str:
    """PNG for pixels (a 48-px face is small, and JPEG would blur it), the file's own otherwise."""
    return "PNG" if isinstance(image, np.ndarray) else "auto"


@st.cache_resource(max_entries=4, show_spinner="Loading the index...")
def cached_index(path: str, stamp: float):  # noqa: ANN201 - HashIndex
    """One loaded index per saved generation (``stamp`` changes when the index is saved again)."""
    return retrieval_data.load_index(Path(path))


path = st.selectbox("Index", dirs, format_func=str, key="index_dir")
try:
    index = cached_index(str(path), retrieval_data.manifest_stamp(path))
except (HashingError, OSError) as exc:
    st.error(f"Cannot open the index at `{path}`: {str(exc).splitlines()[0]}")
    st.stop()

stats = index.stats()
ui.signal_banner(index.extra.get("signal"), f"index `{path}`")  # automl index build's learning checks
names = retrieval_data.class_names(index)
cols = st.columns(5)
cols[0].metric("Items", f"{stats['items']:,}")
cols[1].metric("Bits", stats["bits"])
cols[2].metric("Labelled", f"{stats['labelled_items']:,}")
cols[3].metric("Hash updates", stats["hash_updates"])
stale = int(stats["stale_updates"])
cols[4].metric(
    "Stale updates",
    stale,
    help=f"Hash updates the stored codes lag behind (0 = codes current); codes are re-encoded every "
    f"{stats['refresh_every']} update(s).",
)
st.caption(
    f"{stats['dim']}-d embeddings · labels: {stats['label_kind']} · generation {stats['generation']} · "
    f"{stats['search_backend']} · {stats['embedding_bytes'] / 1e6:.1f} MB of raw embeddings"
)

record_extra = next((r.get("extra") or {} for r in recorded if Path(r["path"]) == Path(path)), {})
history = retrieval_data.stream_history(index.extra, record_extra)
if history:
    fig = go.Figure(go.Scatter(x=[x for x, _ in history], y=[y for _, y in history], mode="lines+markers"))
    fig.update_layout(
        height=260,
        xaxis_title="stream stage",
        yaxis_title="mAP",
        margin=dict(l=40, r=20, t=30, b=40),
        title="BSODH mAP over the stream",
    )
    if len(history) <= 20:
        fig.update_xaxes(dtick=1)
    st.plotly_chart(fig, key="stream_map")

if len(index) == 0:
    st.info("This index holds no items yet (`automl index add`).")
    st.stop()

k = st.slider(
    "Top K",
    min_value=1,
    max_value=min(50, max(1, len(index) - 1)),
    value=min(10, len(index) - 1) or 1,
    key="top_k",
)
source = st.radio(
    "Query", ["A sample from the index", "Upload a face image"], horizontal=True, key="query_kind"
)

root = Path(path)
source_data = index.extra.get("source_data")  # embed_dataset's load options: synth: faces render
query_label = None
ties = None
query_image = None
if source == "A sample from the index":
    pos = int(
        st.number_input(
            f"Item position (0 to {len(index) - 1})",
            min_value=0,
            max_value=len(index) - 1,
            value=0,
            step=1,
            key="sample_pos",
        )
    )
    item_id = int(index.ids[pos])
    if index.labels is not None:
        query_label = index.labels[pos]
    query_source = index.sources[pos]
    rendering = retrieval_data.is_synthetic(query_source)  # the first time: a second or two
    with st.spinner("Rendering the synthetic faces...") if rendering else contextlib.nullcontext():
        query_image = retrieval_data.source_image(query_source, root, source_data)
    query_embedding = retrieval_data.stored_embedding(index, pos)
    hits = retrieval_data.search(index, query_embedding, k, exclude_id=item_id)
    ties = retrieval_data.ties_at_cut(index, query_embedding, hits, exclude_id=item_id)
    missing = retrieval_data.missing_note(query_source, source_data)
    caption = f"item #{item_id}" + (
        f" · {retrieval_data.label_text(query_label, names)}" if query_label is not None else ""
    )
else:
    model_file = retrieval_data.model_path(index, root)
    if model_file is None or not model_file.is_file():
        st.warning(
            "This index records no embedding model that exists here "
            f"({model_file or 'none'}); query with a sample from the index instead."
        )
        st.stop()
    upload = st.file_uploader("Face image", type=["png", "jpg", "jpeg", "bmp", "webp"], key="upload")
    detect = st.toggle("Detect and crop the face", value=True, key="detect")
    if names and index.label_width == 0:
        pick = st.selectbox("Query label (optional, for precision)", ["unknown", *names], key="query_label")
        query_label = None if pick == "unknown" else np.int64(names.index(pick))
    if upload is None:
        st.info("Upload an image to search the index.")
        st.stop()
    data = upload.getvalue()
    try:
        query = retrieval_data.embed_upload(
            model_file, data, detect=detect, whole_anyway=bool(st.session_state.get("whole_image"))
        )
    except HashingError as exc:
        st.error(str(exc))
        st.stop()
    if detect and query.faces == 0:  # kept on the page while it applies, so the tick persists
        st.checkbox(retrieval_data.WHOLE_IMAGE_LABEL, key="whole_image")
    if query.embedding is None:
        st.warning(query.choice.note)
        st.stop()
    st.caption(query.choice.note)
    query_image = query.crop if query.crop is not None else data
    hits = retrieval_data.search(index, query.embedding, k)
    ties = retrieval_data.ties_at_cut(index, query.embedding, hits)
    missing = "the uploaded image"
    caption = upload.name

left, right = st.columns([1, 4])
with left:
    st.markdown("**Query**")
    if query_image is not None:
        st.image(
            query_image if isinstance(query_image, bytes | np.ndarray) else str(query_image),
            caption=caption, width=160, output_format=_format(query_image),
        )  # fmt: skip
    else:
        st.caption(f"{caption} ({missing})")
with right:
    rel = (
        retrieval_data.relevance(query_label, index.labels[hits.positions])
        if query_label is not None and index.labels is not None and len(hits.ids)
        else None
    )
    if rel is not None:
        st.metric(
            f"Precision@{len(hits.ids)}",
            f"{rel.mean():.3f}",
            help="Share of the results with the query's class (or a shared label for multi-label data).",
        )
    else:
        st.caption("Precision needs the query's label.")

st.subheader(f"Top {len(hits.ids)} by Hamming distance")
if (tie_text := retrieval_data.tie_note(ties)) is not None:
    st.warning(tie_text)
hit_sources = [index.sources[int(p)] for p in hits.positions]
# An uploaded query renders no synthetic face before this: the first results may (seconds).
rendering = any(retrieval_data.is_synthetic(s) for s in hit_sources)
with st.spinner("Rendering the synthetic faces...") if rendering else contextlib.nullcontext():
    hit_images = [retrieval_data.source_image(s, root, source_data) for s in hit_sources]
for start in range(0, len(hits.ids), GRID_COLUMNS):
    row = st.columns(GRID_COLUMNS)
    for col, j in zip(row, range(start, min(start + GRID_COLUMNS, len(hits.ids))), strict=False):
        p = int(hits.positions[j])
        label = (
            retrieval_data.label_text(index.labels[p], names) if index.labels is not None else "unlabelled"
        )
        mark = "" if rel is None else (" ✓" if rel[j] else " ✗")
        text = f"#{int(hits.ids[j])} · d={int(hits.distances[j])} · {label}{mark}"
        img = hit_images[j]
        with col:
            if img is not None:
                st.image(img if isinstance(img, np.ndarray) else str(img), caption=text, width="stretch",
                         output_format=_format(img))  # fmt: skip
            else:
                st.caption(f"{text} ({retrieval_data.missing_note(hit_sources[j], source_data)})")
