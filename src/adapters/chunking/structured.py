"""Structure-aware chunking by tokens of the embedding model.

- Sections: a heading starts a new chunk; every chunk carries its heading path
  ("CAPÍTULO III > DAS FÉRIAS"), which the model embeds with the text and search
  shows. The path is trimmed from the top when it would take more than a quarter
  of the budget.
- Units: the extracted blocks (paragraphs, list items, table rows; in norms each
  "Art.", "§", inciso and alínea is its own block) are packed whole, greedily, up
  to ``max_tokens`` including the heading. A new article ("Art. 5º") starts a new
  chunk once the current one is half full, so articles are rarely cut in two.
- A unit larger than the budget is split at sentence boundaries; a sentence larger
  than the budget is split by semchunk (clauses, then words).
- Overlap: inside a section, the next chunk starts with the last sentences (up to
  ``overlap_tokens``) of the previous one, except where the law itself draws the
  line (a new article) and across headings.

Token counts come from the embedding model's own tokenizer (the TokenCounter port),
one call per sentence: the whole document is tokenized about once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from semchunk.semchunk import chunkerify

from adapters.chunking.sentences import split_sentences
from application.ports import TokenCounter
from domain.legal import amended_by, article_label
from domain.model import Block, BlockKind, ChunkDraft, ExtractedDocument, LegalRef

_LABEL_RESERVE = 8  # tokens of " > Art. 123-A"
ARTICLE_START = re.compile(r"^(?:Art\.?\s*\d|Artigo\s+\d)", re.IGNORECASE)

_ARTICLE_LABEL = re.compile(r"^(?:Art\.?|Artigo)\s*\d+[º°o]?(?:-[A-Z])?", re.IGNORECASE)


@dataclass
class _Piece:
    text: str
    tokens: int
    page: int | None
    starts_article: bool = False
    block: Block | None = None  # where it came from (legal position, notes)


@dataclass
class _Chunk:
    heading: str | None  # the section path; `label` is appended when set
    label: str | None = None  # the article this chunk continues ("Art. 77")
    context: str | None = None  # the caput of the article it continues
    context_tokens: int = 0
    pieces: list[_Piece] = field(default_factory=list)
    tokens: int = 0

    @property
    def full_heading(self) -> str | None:
        if self.label:
            return f"{self.heading} > {self.label}" if self.heading else self.label
        return self.heading

    def add(self, piece: _Piece) -> None:
        self.pieces.append(piece)
        self.tokens += piece.tokens


class StructuredChunker:
    """Chunker port."""

    def __init__(
        self,
        counter: TokenCounter,
        max_tokens: int = 256,
        overlap_tokens: int = 32,
        heading_max_tokens: int | None = None,
        norm_context: bool = True,
    ) -> None:
        if not 16 <= max_tokens <= 510:
            raise ValueError("max_tokens must be within 16..510 (the model reads 512)")
        if overlap_tokens >= max_tokens // 2:
            raise ValueError("overlap_tokens must be less than half of max_tokens")
        self.counter = counter
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens
        self.heading_max_tokens = heading_max_tokens or max_tokens // 4
        self.norm_context = norm_context  # read every chunk of a norm with its ementa
        self._splitters: dict[int, Callable[[str], list[str]]] = {}
        self._heading_cost: dict[str, int] = {}

    def count(self, text: str) -> int:
        return self.counter.count_tokens(text)

    # -- the public port -----------------------------------------------------------

    def chunk(self, document: ExtractedDocument) -> list[ChunkDraft]:
        out: list[_Chunk] = []
        path: list[tuple[int, str]] = []
        root = document.norm.citation if document.norm else None
        heading = self._heading(path, document.title, root)
        current = _Chunk(heading)
        article: str | None = None  # label of the article in progress (unstructured text)
        any_body = False
        blocks = document.blocks
        i = 0
        while i < len(blocks):
            block = blocks[i]
            if block.kind is BlockKind.HEADING:
                if current.pieces:
                    out.append(current)
                while path and path[-1][0] >= block.level:
                    path.pop()
                path.append((block.level, block.text))
                heading = self._heading(path, document.title, root)
                current = _Chunk(heading)
                article = None
                i += 1
                continue
            any_body = True
            if block.article is not None:
                # the legal pass knows the article: take all of it as one unit
                j = i + 1
                while (
                    j < len(blocks)
                    and blocks[j].kind is not BlockKind.HEADING
                    and blocks[j].article == block.article
                ):
                    j += 1
                current = self._add_article(blocks[i:j], current, out)
                i = j
                continue
            label = _ARTICLE_LABEL.match(block.text.strip())
            if label:
                article = label.group(0)
            current = self._add_block(block, current, out, article)
            i += 1
        if current.pieces:
            out.append(current)
        if not any_body and path:
            # a document of headings only (all-caps lines, a table of contents):
            # keep their words rather than losing the document
            return self.chunk(
                ExtractedDocument(
                    blocks=[
                        Block(BlockKind.PARAGRAPH, b.text, page=b.page) for b in document.blocks
                    ],
                    title=document.title,
                    pages=document.pages,
                )
            )
        return self._drafts(out, self._norm_context(document))

    def _norm_context(self, document: ExtractedDocument) -> tuple[str, int] | None:
        """The norm's ementa, which every chunk of a norm is read with: what the law is
        about gives each passage its subject (bench/retrieval_ablation.py: hybrid
        recall@5 0.778 with it, 0.667 without). Cut to a
        fifth of the budget, whole words; it comes on top of the passage's budget (the
        model reads 512 tokens)."""
        norm = document.norm
        if not self.norm_context or norm is None or not norm.ementa:
            return None
        limit = self.max_tokens // 5
        words = norm.ementa.split()
        text = norm.ementa
        tokens = self.count(text)
        while tokens > limit and len(words) > 1:
            words = words[: max(1, len(words) * limit // tokens)]
            text = " ".join(words) + " ..."
            tokens = self.count(text)
        return text, tokens

    # -- packing -----------------------------------------------------------------------

    def _budget(self, heading: str | None) -> int:
        if not heading:
            return self.max_tokens
        cost = self._heading_cost.get(heading)
        if cost is None:
            if len(self._heading_cost) > 10_000:
                self._heading_cost.clear()
            cost = self._heading_cost[heading] = self.count(heading) + 1  # + the newline
        return self.max_tokens - cost

    def _add_article(self, blocks: list[Block], current: _Chunk, out: list[_Chunk]) -> _Chunk:
        """An article is one chunk when it fits (short neighbours may share one); a long
        article splits at its paragraphs and incisos, every continuation chunk carrying
        the caput (and the paragraph's lead-in) as context."""
        texts = [b.text.strip() for b in blocks]
        counts = [self.count(t) for t in texts]
        total = sum(counts) + len(blocks) - 1
        room = self._budget(current.full_heading)
        if (
            current.pieces
            and current.label is None
            and current.tokens + 1 + total <= room
            and current.tokens < room // 2
        ):
            for k, (b, t, n) in enumerate(zip(blocks, texts, counts, strict=True)):
                current.add(_Piece(t, n, b.page, k == 0, b))
            return current
        if current.pieces:
            out.append(current)
            current = _Chunk(current.heading)
        if total <= self._budget(current.heading):
            for k, (b, t, n) in enumerate(zip(blocks, texts, counts, strict=True)):
                current.add(_Piece(t, n, b.page, k == 0, b))
            return current
        # too long for one chunk
        label = article_label(blocks[0].article or "")
        caput, _ = self._context(texts[0], counts[0])
        lead_ins: dict[str | None, str] = {}
        cont_room = self._budget(f"{current.heading} > {label}" if current.heading else label)
        piece_budget = max(16, cont_room - self.max_tokens // 4 - _LABEL_RESERVE)
        for k, (b, t, n) in enumerate(zip(blocks, texts, counts, strict=True)):
            if b.inciso is None and b.alinea is None and b.paragraph is not None:
                lead_ins[b.paragraph] = t
            pieces = (
                [_Piece(t, n, b.page, k == 0, b)]
                if n <= piece_budget
                else [
                    _Piece(s, m, b.page, k == 0 and j == 0, b)
                    for j, (s, m) in enumerate(self._sentences(t, piece_budget))
                ]
            )
            for piece in pieces:
                room = self._budget(current.full_heading) - current.context_tokens
                if current.pieces and current.tokens + piece.tokens + 1 > room:
                    out.append(current)
                    current = _Chunk(current.heading, label=label)
                    context = caput
                    lead = lead_ins.get(b.paragraph) if b.inciso or b.alinea else None
                    if lead and lead != t:
                        context = f"{caput}\n{lead}"
                    current.context, current.context_tokens = self._context(
                        context, self.count(context)
                    )
                current.add(piece)
        return current

    def _context(self, text: str, tokens: int) -> tuple[str, int]:
        """`text` cut to a quarter of the budget (whole words), with its token count."""
        limit = self.max_tokens // 4
        if tokens <= limit:
            return text, tokens
        words = text.split()
        keep = max(1, len(words) * limit // max(1, tokens))
        while keep > 1:
            cut = " ".join(words[:keep]) + " ..."
            n = self.count(cut)
            if n <= limit:
                return cut, n
            keep -= max(1, keep // 10)
        cut = words[0]
        return cut, self.count(cut)

    def _add_block(
        self, block: Block, current: _Chunk, out: list[_Chunk], article: str | None
    ) -> _Chunk:
        # pieces must also fit a continuation chunk, whose heading names the article
        budget = self._budget(current.heading) - _LABEL_RESERVE
        text = block.text.strip()
        starts_article = bool(ARTICLE_START.match(text))
        tokens = self.count(text)
        if tokens <= budget:
            pieces = [_Piece(text, tokens, block.page, starts_article, block)]
        else:
            pieces = [
                _Piece(s, n, block.page, starts_article and i == 0, block)
                for i, (s, n) in enumerate(self._sentences(text, budget))
            ]
        for piece in pieces:
            room = self._budget(current.full_heading) - current.context_tokens
            fits = current.tokens + piece.tokens + (1 if current.pieces else 0) <= room
            article_break = piece.starts_article and current.tokens >= room // 2
            if current.pieces and (not fits or article_break):
                out.append(current)
                nxt = _Chunk(current.heading)
                if not piece.starts_article:
                    nxt.label = article
                    room = self._budget(nxt.full_heading)
                    for tail in self._overlap(current, room - piece.tokens):
                        nxt.add(tail)
                current = nxt
            current.add(piece)
        return current

    def _sentences(self, text: str, budget: int) -> Iterable[tuple[str, int]]:
        for sentence in split_sentences(text):
            n = self.count(sentence)
            if n <= budget:
                yield sentence, n
                continue
            for part in self._splitter(budget)(sentence):
                yield part, self.count(part)

    def _splitter(self, budget: int) -> Callable[[str], list[str]]:
        splitter = self._splitters.get(budget)
        if splitter is None:
            chunker = chunkerify(self.count, budget)
            splitter = self._splitters[budget] = lambda s: list(chunker(s))  # type: ignore[arg-type]
        return splitter

    def _overlap(self, previous: _Chunk, room: int) -> list[_Piece]:
        """The last sentences of `previous`, within the overlap budget and the room left."""
        limit = min(self.overlap_tokens, room)
        if limit <= 0:
            return []
        tail: list[_Piece] = []
        used = 0
        for piece in reversed(previous.pieces):
            sentences = split_sentences(piece.text) if piece.tokens > limit else [piece.text]
            for sentence in reversed(sentences):
                n = piece.tokens if len(sentences) == 1 else self.count(sentence)
                if used + n > limit:
                    return tail
                tail.insert(0, _Piece(sentence, n, piece.page))
                used += n
        return tail

    # -- headings and output -------------------------------------------------------------

    def _heading(
        self, path: list[tuple[int, str]], title: str | None, root: str | None = None
    ) -> str | None:
        """The section path, under the norm's citation when the document is a norm."""
        parts = [text for _, text in path] or ([title] if title and not root else [])
        if root:
            parts = [root, *parts]
        while parts:
            heading = " > ".join(parts)
            if self.count(heading) <= self.heading_max_tokens:
                return heading
            if len(parts) == 1:
                words = parts[0].split()
                keep = max(1, len(words) * self.heading_max_tokens // max(1, self.count(heading)))
                return " ".join(words[:keep])
            parts = parts[1:]
        return None

    def _drafts(
        self, chunks: list[_Chunk], norm_context: tuple[str, int] | None = None
    ) -> list[ChunkDraft]:
        drafts: list[ChunkDraft] = []
        ementa, ementa_tokens = norm_context or (None, 0)
        for chunk in chunks:
            text = "\n".join(p.text for p in chunk.pieces)
            pages = [p.page for p in chunk.pieces if p.page is not None]
            context = "\n".join(c for c in (ementa, chunk.context) if c) or None
            drafts.append(
                ChunkDraft(
                    position=len(drafts),
                    text=text,
                    token_count=chunk.tokens + chunk.context_tokens + ementa_tokens,
                    heading=chunk.full_heading,
                    page_start=min(pages) if pages else None,
                    page_end=max(pages) if pages else None,
                    context=context,
                    legal=_legal_ref(chunk),
                )
            )
        return drafts


def _legal_ref(chunk: _Chunk) -> LegalRef:
    blocks = [p.block for p in chunk.pieces if p.block is not None]
    articles = [b.article for b in blocks if b.article is not None]
    if not articles:
        return LegalRef()
    notes = [n for b in blocks for n in b.notes]
    ref = LegalRef(
        article=articles[0],
        article_end=articles[-1] if articles[-1] != articles[0] else None,
        amended_by=tuple(amended_by(notes)),
    )
    if chunk.label is None or ref.article_end is not None:
        return ref  # a whole article (or several): cite the article
    # a continuation: cite the paragraph / inciso when all of it lies in one
    paragraphs = {b.paragraph for b in blocks}
    if len(paragraphs) != 1 or None in paragraphs:
        return ref
    incisos = {b.inciso for b in blocks}
    alineas = {b.alinea for b in blocks}
    inciso = incisos.pop() if len(incisos) == 1 else None
    alinea = alineas.pop() if len(alineas) == 1 and inciso else None
    return replace(ref, paragraph=paragraphs.pop(), inciso=inciso, alinea=alinea)
