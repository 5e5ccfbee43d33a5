"""Matrix-level results: sums of  coefficient * scalars * prod tr(word) [* word].

A :class:`ScalarForm` is a dimension-free scalar such as an expected loss,

    L = sum_r c_r(N)  s_r  prod_k tr(W_{r,k}),

and a :class:`MatrixForm` a matrix such as a gradient,

    G = sum_r c_r(N)  s_r  prod_k tr(W_{r,k})  V_r,

with c_r a Laurent polynomial in N (exact), s_r a product of 1x1 symbols,
and W, V canonical words (see :mod:`.words`).  Equal terms are merged and
the terms sorted, so printing is deterministic.  Forms print as text and
LaTeX, convert to SymPy matrix expressions, evaluate at explicit SymPy
matrices, and compile to NumPy functions of arrays.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import sympy as sp
from sympy.matrices.expressions import MatrixSymbol

from ..errors import ModelError
from .words import Diag, Sym, canon_trace, canon_word, render_word, transpose, word_key

__all__ = ["Term", "ScalarForm", "MatrixForm", "numpy_source", "to_numpy_many"]


@dataclass(frozen=True)
class Term:
    """coeff * prod(scalars) * prod_k tr(traces[k]) [* word]."""
    coeff: sp.Expr
    scalars: tuple  # 1x1 MatrixSymbols, sorted by name (a multiset)
    traces: tuple   # canonical trace words, sorted
    word: tuple | None = None  # the open word of a matrix term

    def key(self) -> tuple:
        return (len(self.traces), tuple(word_key(w) for w in self.traces),
                tuple(s.name for s in self.scalars),
                () if self.word is None else word_key(self.word))


def _atoms_of(words) -> set:
    out = set()
    for w in words:
        for a in w:
            if isinstance(a, Sym):
                out.add(a.symbol)
            else:
                out |= _atoms_of([a.word])
    return out


def _dim_namer(syms, names: list) -> Callable:
    """d -> the code of a size: a number, ``A.shape[k]`` of an argument that carries it,
    or a new argument named after it (appended to ``names``)."""
    dim_source = {}
    for s in syms:
        for k, d in enumerate(s.shape):
            d = sp.sympify(d)
            if not d.is_number:
                dim_source.setdefault(d, f"{s.name}.shape[{k}]")

    def dim(d) -> str:
        d = sp.sympify(d)
        if d.is_number:
            return str(int(d))
        if d not in dim_source:  # a size no argument carries: ask for it
            names.append(str(d))
            dim_source[d] = str(d)
        return dim_source[d]

    return dim



def _sum_of(terms: list, shape, dim) -> str:
    """The code of a sum of terms: 0.0 (scalar) or a zero matrix when there are none."""
    if terms:
        return " + ".join(terms)
    return "0.0" if shape is None else f"np.zeros(({dim(shape[0])}, {dim(shape[1])}))"


def _numpy_head(func_name: str, names, scalar_names, syms) -> list[str]:
    """The signature and argument conversions of a generated NumPy function."""
    head = [f"def {func_name}({', '.join(names)}):"]
    for n in sorted(scalar_names):
        head.append(f"    {n} = float(np.asarray({n}).reshape(()))")
    for s in syms:
        if s.name not in scalar_names:
            head.append(f"    {s.name} = np.asarray({s.name}, dtype=float)")
    return head



class _Form:
    """Shared machinery of :class:`ScalarForm` and :class:`MatrixForm`."""

    def __init__(self, terms, latex_names: Mapping[str, str] | None = None):
        self.latex_names = dict(latex_names or {})
        merged: dict = defaultdict(lambda: sp.Integer(0))
        proto: dict = {}
        for t in terms:
            k = t.key()
            merged[k] = merged[k] + t.coeff
            proto[k] = t
        out = []
        for k in sorted(merged):
            c = sp.expand(merged[k])
            if c != 0:
                p = proto[k]
                out.append(Term(c, p.scalars, p.traces, p.word))
        self.terms: tuple[Term, ...] = tuple(out)

    # -- structure --------------------------------------------------------------
    def symbols(self) -> list[MatrixSymbol]:
        """Matrix symbols of the form, sorted by name."""
        found = set()
        for t in self.terms:
            found |= set(t.scalars) | _atoms_of(t.traces)
            if t.word is not None:
                found |= _atoms_of([t.word])
        return sorted(found, key=lambda s: s.name)

    def coefficient_symbols(self) -> list[sp.Symbol]:
        found = set()
        for t in self.terms:
            found |= t.coeff.free_symbols
        return sorted(found, key=lambda s: s.name)

    def __len__(self) -> int:
        return len(self.terms)

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.terms == other.terms and \
            getattr(self, "shape", None) == getattr(other, "shape", None)

    def __hash__(self):
        return hash(self.terms)

    # -- printing ------------------------------------------------------------------
    def _name(self, latex: bool) -> Callable:
        if not latex:
            return lambda a: a.name
        return lambda a: self.latex_names.get(a.name) or sp.latex(a.symbol)

    def _word_text(self, word, latex: bool) -> str:
        if latex:
            return render_word(word, self._name(True), "^{\\top}",
                               ("\\operatorname{Diag}\\left(", "\\right)"), " ", "I",
                               lambda b, k: f"{b}^{{{k}}}")
        return render_word(word, self._name(False), "^T", ("Diag(", ")"), " ", "I",
                           lambda b, k: f"{b}^{k}")

    def _term_body(self, t: Term, latex: bool) -> list[str]:
        parts = []
        counts: dict = {}
        for s in t.scalars:
            counts[s] = counts.get(s, 0) + 1
        for s, k in counts.items():
            base = self._name(latex)(Sym(s))
            parts.append(base if k == 1 else (f"{base}^{{{k}}}" if latex else f"{base}^{k}"))
        for w in t.traces:
            inner = self._word_text(w, latex)
            parts.append(f"\\operatorname{{tr}}\\left({inner}\\right)" if latex else f"tr({inner})")
        if t.word is not None and (t.word or not parts or self.shape != (1, 1)):
            parts.append(self._word_text(t.word, latex))
        return parts

    def _render(self, latex: bool) -> str:
        if not self.terms:
            return "0"
        out = []
        for i, t in enumerate(self.terms):
            c = sp.factor(t.coeff)
            neg = c.could_extract_minus_sign()
            if neg:
                c = -c
            body = self._term_body(t, latex)
            if c == 1:
                text = (" " if latex else " * ").join(body)
            else:
                cs = sp.latex(c) if latex else (str(c) if c.is_Atom else f"({c})")
                if latex and c.is_Add:
                    cs = f"\\left({cs}\\right)"
                text = (" " if latex else " * ").join([cs] + body)
            if i == 0:
                out.append(("-" if neg else "") + text)
            else:
                out.append((" - " if neg else " + ") + text)
        return "".join(out)

    def __str__(self) -> str:
        return self._render(False)

    def latex(self) -> str:
        """LaTeX of the form, with tr and Diag as operators."""
        return self._render(True)

    # -- to SymPy ------------------------------------------------------------------
    def _sympy_word(self, word, shape=None):
        from sympy.matrices.expressions.diagonal import DiagonalMatrix
        if not word:
            return sp.Identity(shape[0])
        factors = []
        for a in word:
            if isinstance(a, Sym):
                factors.append(a.symbol.T if a.transposed else a.symbol)
            else:
                factors.append(DiagonalMatrix(self._sympy_word(a.word)))
        return factors[0] if len(factors) == 1 else sp.MatMul(*factors)

    def _sympy_term_scalar(self, t: Term):
        out = t.coeff
        for s in t.scalars:
            out = out * s[0, 0]
        for w in t.traces:
            out = out * sp.Trace(self._sympy_word(w))
        return out

    # -- explicit evaluation --------------------------------------------------------
    def _values(self, values: Mapping) -> tuple[dict, dict]:
        """name -> explicit Matrix for every matrix symbol, and the sizes they fix."""
        by_name = {(k.name if isinstance(k, (MatrixSymbol, sp.Symbol)) else str(k)): v
                   for k, v in values.items()}
        mats, dims = {}, {}
        for s in self.symbols():
            if s.name not in by_name:
                raise ModelError(f"no value given for the matrix {s.name}")
            v = by_name[s.name]
            if isinstance(v, sp.MatrixBase):
                m = sp.Matrix(v)
            elif np.ndim(v) == 2:
                m = sp.Matrix(np.asarray(v, dtype=object).tolist())
            elif np.ndim(v) == 0:
                m = sp.Matrix([[sp.sympify(v)]])
            else:
                raise ModelError(f"value of {s.name} must be a matrix, got {v!r}")
            for want, got in zip(s.shape, m.shape):
                want = sp.sympify(want)
                if want.is_number:
                    if want != got:
                        raise ModelError(f"{s.name} must be {s.shape[0]}x{s.shape[1]}, "
                                         f"got {m.shape[0]}x{m.shape[1]}")
                elif dims.setdefault(want, got) != got:
                    raise ModelError(f"{s.name} is {m.shape[0]}x{m.shape[1]}, but {want} = "
                                     f"{dims[want]} from another matrix")
            mats[s.name] = m
        return mats, dims

    def _eval_word(self, word, mats, memo, n=None):
        if not word:
            return sp.eye(n)
        if word in memo:
            return memo[word]
        if len(word) == 1:
            a = word[0]
            if isinstance(a, Sym):
                m = mats[a.name]
                out = m.T if a.transposed else m
            else:
                inner = self._eval_word(a.word, mats, memo)
                out = sp.diag(*[inner[i, i] for i in range(inner.shape[0])])
        else:
            out = self._eval_word(word[:-1], mats, memo) * self._eval_word(word[-1:], mats, memo)
        memo[word] = out
        return out

    def _eval_trace(self, word, mats, memo):
        if len(word) == 1:
            return self._eval_word(word, mats, memo).trace()
        left = self._eval_word(word[:-1], mats, memo)
        right = self._eval_word(word[-1:], mats, memo)
        return sp.Add(*[left[i, j] * right[j, i] for i in range(left.shape[0])
                        for j in range(left.shape[1])])

    def _split(self, values: Mapping) -> tuple[dict, dict]:
        """Separate matrix values from coefficient values (such as N)."""
        coeff = {s.name: s for s in self.coefficient_symbols()}
        mats, subs = {}, {}
        for k, v in values.items():
            name = k.name if isinstance(k, (MatrixSymbol, sp.Symbol)) else str(k)
            if name in coeff:
                subs[coeff[name]] = v
            else:
                mats[k] = v
        return mats, subs

    # -- NumPy ------------------------------------------------------------------------
    def _codegen(self, func_name: str) -> tuple[str, list[str]]:
        return numpy_source({None: self}, func_name)

    def _codegen_chain(self, func_name: str) -> tuple[str, list[str]]:
        """The previous generator (kept for benchmarks): left-to-right products,
        Diag factors as dense np.diag matrices, nothing shared between forms."""
        syms = self.symbols()
        coeff_syms = self.coefficient_symbols()
        names = [s.name for s in syms] + [s.name for s in coeff_syms]
        for n in names:
            if not n.isidentifier():
                raise ModelError(f"symbol name {n!r} is not a Python identifier")
        lines = []
        memo: dict = {}
        scalar_names = {s.name for s in syms if s.shape == (1, 1)}

        def mat(word):
            if word in memo:
                return memo[word]
            if len(word) == 1:
                a = word[0]
                if isinstance(a, Sym):
                    expr = a.name + (".T" if a.transposed else "")
                    memo[word] = expr
                    return expr
                expr = f"np.diag(np.diagonal({mat(a.word)}))"
            else:
                expr = f"{mat(word[:-1])} @ {mat(word[-1:])}"
            var = f"_m{len(lines)}"
            lines.append(f"    {var} = {expr}")
            memo[word] = var
            return var

        def trace(word):
            if len(word) == 1:
                return f"np.trace({mat(word)})"
            return f"np.vdot({mat(word[:-1])}, {mat(word[-1:])}.T)"

        dim = _dim_namer(syms, names)

        terms = []
        for t in self.terms:
            factors = [f"({sp.pycode(t.coeff)})"] + [s.name for s in t.scalars]
            factors += [trace(w) for w in t.traces]
            if t.word is not None:
                factors.append(mat(t.word) if t.word else f"np.eye({dim(self.shape[0])})")
            terms.append(" * ".join(factors))
        value = _sum_of(terms, self.shape, dim)
        head = _numpy_head(func_name, names, scalar_names, syms)
        return "\n".join(head + lines + [f"    return {value}"]) + "\n", names

    def to_numpy(self, func_name: str = "f", plan: str = "minimal") -> Callable:
        """A NumPy function of the matrices (and coefficient symbols such as N), by name.

        The generated source is ``f.source``; arguments are the matrix names
        (sorted) then the coefficient symbols (sorted), e.g. ``f(P22=.., Q11=.., S=.., N=10)``.
        ``f.products`` counts its matrix products.
        ``plan="minimal"`` splits products to reuse what is computed and keeps
        diagonal factors as vectors, adds sums up in place and keeps its
        intermediate arrays between calls (one set per thread; what it returns
        is always a new array); ``plan="chain"`` is the previous
        generator (left-to-right products, dense diagonals), for comparison.
        """
        if plan not in ("minimal", "chain"):
            raise ModelError(f"unknown code plan {plan!r} (minimal or chain)")
        source, names = (self._codegen if plan == "minimal" else self._codegen_chain)(func_name)
        return _compile_numpy(source, names, func_name)


class ScalarForm(_Form):
    """A scalar: sum_r c_r prod(scalars) prod_k tr(W_{r,k})."""
    shape = None

    @classmethod
    def from_raw(cls, items, latex_names=None) -> "ScalarForm":
        """From (coefficient, 1x1 symbols, raw trace words) triples: canonicalised, merged."""
        terms = []
        for coeff, scalars, traces in items:
            terms.append(Term(sp.sympify(coeff), tuple(sorted(scalars, key=lambda s: s.name)),
                              tuple(sorted((canon_trace(w) for w in traces), key=word_key))))
        return cls(terms, latex_names)

    def __neg__(self) -> "ScalarForm":
        return ScalarForm([Term(-t.coeff, t.scalars, t.traces) for t in self.terms],
                          self.latex_names)

    def to_sympy(self) -> sp.Expr:
        """A SymPy expression with Trace, MatMul, Transpose and DiagonalMatrix."""
        return sp.Add(*[self._sympy_term_scalar(t) for t in self.terms])

    def evaluate(self, values: Mapping) -> sp.Expr:
        """The value at explicit SymPy matrices (by symbol or name); coefficient symbols
        such as N stay symbolic unless given."""
        mats_in, subs = self._split(values)
        mats, _ = self._values(mats_in)
        memo: dict = {}
        total = sp.Integer(0)
        for t in self.terms:
            v = t.coeff.subs(subs) if subs else t.coeff
            for s in t.scalars:
                v = v * mats[s.name][0, 0]
            for w in t.traces:
                v = v * self._eval_trace(w, mats, memo)
            total = total + v
        return total


class MatrixForm(_Form):
    """A matrix of shape ``shape``: sum_r c_r prod(scalars) prod_k tr(W_{r,k}) V_r."""

    def __init__(self, terms, shape, latex_names=None):
        self.shape = tuple(shape)
        super().__init__(terms, latex_names)

    @classmethod
    def from_raw(cls, items, shape, latex_names=None) -> "MatrixForm":
        """From (coefficient, 1x1 symbols, raw trace words, raw open word) quadruples."""
        terms = []
        for coeff, scalars, traces, word in items:
            terms.append(Term(sp.sympify(coeff), tuple(sorted(scalars, key=lambda s: s.name)),
                              tuple(sorted((canon_trace(w) for w in traces), key=word_key)),
                              canon_word(word)))
        return cls(terms, shape, latex_names)

    def __neg__(self) -> "MatrixForm":
        return MatrixForm([Term(-t.coeff, t.scalars, t.traces, t.word) for t in self.terms],
                          self.shape, self.latex_names)

    @property
    def T(self) -> "MatrixForm":
        """The transpose."""
        return MatrixForm([Term(t.coeff, t.scalars, t.traces, canon_word(transpose(t.word)))
                           for t in self.terms], self.shape[::-1], self.latex_names)

    def to_sympy(self):
        """A SymPy matrix expression with Trace, MatMul, Transpose and DiagonalMatrix."""
        if not self.terms:
            return sp.ZeroMatrix(*self.shape)
        return sp.MatAdd(*[self._sympy_term_scalar(t) * self._sympy_word(t.word, self.shape)
                           for t in self.terms])

    def evaluate(self, values: Mapping) -> sp.Matrix:
        """The explicit matrix at explicit SymPy matrices (see :meth:`ScalarForm.evaluate`)."""
        mats_in, subs = self._split(values)
        mats, dims = self._values(mats_in)
        rows, cols = (sp.sympify(d) for d in self.shape)
        rows = int(rows) if rows.is_number else dims.get(rows)
        cols = int(cols) if cols.is_number else dims.get(cols)
        if rows is None or cols is None:
            raise ModelError(f"cannot tell the size {self.shape} from the matrices given")
        memo: dict = {}
        total = sp.zeros(rows, cols)
        for t in self.terms:
            v = t.coeff.subs(subs) if subs else t.coeff
            for s in t.scalars:
                v = v * mats[s.name][0, 0]
            for w in t.traces:
                v = v * self._eval_trace(w, mats, memo)
            total = total + v * self._eval_word(t.word, mats, memo, rows)
        return total


# -- NumPy code generation ---------------------------------------------------------------

def _kind(word) -> str:
    """"vec" for a product of Diag factors (a diagonal matrix, held as its diagonal)."""
    return "vec" if all(isinstance(a, Diag) for a in word) else "mat"


class _Emitter:
    """NumPy statements for words, traces and diagonals, with a shared memo.

    Each word evaluates to ("mat", source) or ("vec", source): a vector
    stands for the diagonal matrix diag(v) (a Diag factor), so products with
    it are O(d^2) scalings and the diagonal of a product is one O(d^2)
    contraction instead of a d x d product.  A product word is split where
    the fewest new d x d products are needed given what is computed already
    (ties: the left-to-right chain), and a trace may be read in any cyclic
    rotation or transposed, to reuse products the other terms need.
    """

    def __init__(self):
        self.lines: list[str] = []
        self.memo: dict = {}
        self.products = 0
        # memory layout of each matrix source: "C" (row-major), "F" (its .T is row-major),
        # "S" (a symmetric argument: read as itself or as its transpose, as suits), or None
        self.layout: dict[str, str | None] = {}
        # var -> (line index, the same statement allocating a new array): a value that is
        # returned must not live in the workspace, so its line is switched back at the end
        self.buffered: dict[str, tuple[int, str]] = {}
        self.slots = 0

    def emit(self, expr, kind, layout=None):
        var = f"_m{len(self.lines)}"
        self.lines.append(f"    {var} = {expr}")
        if kind == "mat":
            self.layout[var] = layout
        return kind, var

    def emit_into(self, func, args, rows, cols, layout):
        """var = func(*args, out=<a workspace array>) for a matrix result.

        Intermediate d x d arrays are written into arrays kept between calls
        (per thread): a new 0.5 MB array per intermediate at d = 256 comes
        from fresh pages (the allocator returns freed memory to the system),
        and faulting them in cost as much as the additions themselves.
        """
        slot = self.slots
        self.slots += 1
        f = ", True" if layout == "F" else ""
        kind, var = self.emit(f"{func}({', '.join(args)}, out=_work({slot}, {rows}, {cols}{f}))",
                              "mat", layout)
        self.buffered[var] = (len(self.lines) - 1, f"    {var} = {func}({', '.join(args)})")
        return kind, var

    def new_array(self, rows, cols, layout, fresh: str) -> str:
        """var = a workspace array (``fresh``: the statement allocating one instead)."""
        slot = self.slots
        self.slots += 1
        f = ", True" if layout == "F" else ""
        _, var = self.emit(f"_work({slot}, {rows}, {cols}{f})", "mat", layout)
        self.buffered[var] = (len(self.lines) - 1, f"    {var} = {fresh}")
        return var

    def unbuffer(self, var: str) -> None:
        """Let ``var`` (a returned value) be a new array, not a workspace one."""
        if var in self.buffered:
            i, line = self.buffered.pop(var)
            self.lines[i] = line

    @staticmethod
    def _flip(src: str) -> str:
        return src[:-2] if src.endswith(".T") else f"{src}.T"

    def _aligned(self, lv: str, rv: str):
        """(l, r, "CF" or "FC") with l = lv and r = rv as values, laid out so that l_ij
        and r_ji lie in the same order in memory (tr(l r) and diag(l r) then read both
        contiguously; at d = 256 a strided read costs 5-10x); None when no pairing
        is known.  A symmetric argument is read transposed where that aligns it."""
        la, lb = self.layout.get(lv), self.layout.get(rv)
        if la == "S" and lb == "S":
            return lv, f"{rv}.T", "CF"
        if la == "S" and lb in ("C", "F"):
            return (lv, rv, "CF") if lb == "F" else (f"{lv}.T", rv, "FC")
        if lb == "S" and la in ("C", "F"):
            return (lv, f"{rv}.T", "CF") if la == "C" else (lv, rv, "FC")
        if (la, lb) in (("C", "F"), ("F", "C")):
            return lv, rv, la + lb
        return None

    # -- cost model: the number of new d x d products ------------------------------------
    def _cost(self, word, cache) -> int:
        if word in self.memo or (len(word) == 1 and isinstance(word[0], Sym)):
            return 0
        hit = cache.get(word)
        if hit is not None:
            return hit
        if len(word) == 1:
            out = self._cost_diag(word[0].word, cache)
        else:
            out = min(self._split_cost(word, k, cache) for k in range(1, len(word)))
        cache[word] = out
        return out

    def _split_cost(self, word, k, cache) -> int:
        left, right = word[:k], word[k:]
        both = _kind(left) == "mat" and _kind(right) == "mat"
        return self._cost(left, cache) + self._cost(right, cache) + (1 if both else 0)

    def _cost_diag(self, word, cache) -> int:
        key = ("diagonal", word)
        if key in self.memo or word in self.memo:
            return 0
        hit = cache.get(key)
        if hit is not None:
            return hit
        if len(word) == 1:
            out = 0 if isinstance(word[0], Sym) else self._cost_diag(word[0].word, cache)
        else:
            out = min(self._cost(word[:k], cache) + self._cost(word[k:], cache)
                      for k in range(1, len(word)))
        cache[key] = out
        return out

    def _best_split(self, word, with_product: bool) -> int:
        cache: dict = {}
        best_k, best = len(word) - 1, None
        for k in range(len(word) - 1, 0, -1):
            c = (self._split_cost(word, k, cache) if with_product
                 else self._cost(word[:k], cache) + self._cost(word[k:], cache))
            if best is None or c < best:
                best_k, best = k, c
        return best_k

    # -- statements ---------------------------------------------------------------------
    def product(self, left, right):
        (lk, lv), (rk, rv) = left, right
        if lk == "mat" and rk == "mat":
            self.products += 1
            return self.emit_into("np.matmul", (lv, rv), f"{lv}.shape[0]", f"{rv}.shape[1]",
                                  "C")
        if lk == "vec" and rk == "mat":
            return self.emit_into("np.multiply", (f"{lv}[:, None]", rv), f"{rv}.shape[0]",
                                  f"{rv}.shape[1]", self._scaled_layout(rv))
        if lk == "mat":
            return self.emit_into("np.multiply", (lv, f"{rv}[None, :]"), f"{lv}.shape[0]",
                                  f"{lv}.shape[1]", self._scaled_layout(lv))
        return self.emit(f"{lv} * {rv}", "vec")

    def _scaled_layout(self, src):
        """A broadcast product keeps its matrix operand's layout (NumPy's order K)."""
        lay = self.layout.get(src)
        return "F" if lay == "F" else "C"

    def value(self, word):
        if word in self.memo:
            return self.memo[word]
        if len(word) == 1:
            a = word[0]
            if isinstance(a, Sym):
                out = ("mat", a.name + (".T" if a.transposed else ""))
                self.layout[out[1]] = "F" if a.transposed else ("S" if a.symmetric else "C")
            else:
                out = self.diagonal(a.word)
        else:
            k = self._best_split(word, True)
            out = self.product(self.value(word[:k]), self.value(word[k:]))
        self.memo[word] = out
        return out

    def diagonal(self, word):
        key = ("diagonal", word)
        if key in self.memo:
            return self.memo[key]
        if word in self.memo:
            kind, v = self.memo[word]
            out = (kind, v) if kind == "vec" else self.emit(f"np.diagonal({v})", "vec")
        elif len(word) == 1:
            a = word[0]
            if isinstance(a, Sym):
                out = self.emit(f"np.diagonal({a.name})", "vec")
            else:
                out = self.diagonal(a.word)
        else:
            k = self._best_split(word, False)
            (lk, lv), (rk, rv) = self.value(word[:k]), self.value(word[k:])
            if lk == "mat" and rk == "mat":
                al = self._aligned(lv, rv)
                if al is None:
                    out = self.emit(f"np.einsum('ij,ji->i', {lv}, {rv})", "vec")
                elif al[2] == "CF":   # diag(l r)_i = sum_j l_ij (r^T)_ij, both row-major
                    out = self.emit(f"np.einsum('ij,ij->i', {al[0]}, {self._flip(al[1])})", "vec")
                else:                 # = sum_j (l^T)_ji r_ji, both row-major
                    out = self.emit(f"np.einsum('ji,ji->i', {self._flip(al[0])}, {al[1]})", "vec")
            elif lk == "vec" and rk == "mat":
                out = self.emit(f"{lv} * np.diagonal({rv})", "vec")
            elif lk == "mat":
                out = self.emit(f"np.diagonal({lv}) * {rv}", "vec")
            else:
                out = self.emit(f"{lv} * {rv}", "vec")
        self.memo[key] = out
        return out

    # -- sums of matrix terms, with common first or last factors taken out -------------
    @staticmethod
    def _factor(terms, side: str):
        """(atom, inner terms) when every word has length >= 2 and the same first
        (side "prefix") or last ("suffix") atom; else None."""
        if len(terms) < 2 or any(len(w) < 2 for _, w in terms):
            return None
        pick = 0 if side == "prefix" else -1
        atom = terms[0][1][pick]
        if any(w[pick] != atom for _, w in terms):
            return None
        inner = tuple((c, w[1:] if side == "prefix" else w[:-1]) for c, w in terms)
        return atom, inner

    def _sum_cost(self, terms, cache) -> int:
        if ("sum", terms) in self.memo:
            return 0
        best = sum(self._cost(w, cache) for _, w in terms)
        for side in ("prefix", "suffix"):
            f = self._factor(terms, side)
            if f is not None:
                c = self._sum_cost(f[1], cache) + (1 if _kind((f[0],)) == "mat" else 0)
                best = min(best, c)
        return best

    def matrix_sum(self, terms) -> list:
        """Parts (coefficient source, kind, source) of sum_r coeff_r * word_r (terms:
        (coefficient source, word) pairs), to be added up by :meth:`accumulate`.

        A factor common to every word (first or last) is taken out when that
        needs fewer d x d products, so T W1' - W2 W1 W1' becomes (T - W2 W1) W1'
        and the residual is shared with the other block's W2' (T - W2 W1).
        """
        terms = tuple(terms)
        key = ("sum", terms)
        if key in self.memo:
            return [("(1)", "mat", self.memo[key][1])]
        cache: dict = {}
        plain = sum(self._cost(w, cache) for _, w in terms)
        best, choice = plain, None
        for side in ("prefix", "suffix"):
            f = self._factor(terms, side)
            if f is not None:
                c = self._sum_cost(f[1], cache) + (1 if _kind((f[0],)) == "mat" else 0)
                if c < best:
                    best, choice = c, (side, f)
        if choice is None:
            return [(c,) + self.value(w) for c, w in terms]
        side, (atom, inner) = choice
        if ("sum", inner) not in self.memo:
            self.memo[("sum", inner)] = ("mat", self.accumulate(self.matrix_sum(inner)))
        inner_val = self.memo[("sum", inner)]
        atom_val = self.value((atom,))
        out = (self.product(atom_val, inner_val) if side == "prefix"
               else self.product(inner_val, atom_val))
        self.memo[key] = out
        return [("(1)", "mat", out[1])]

    def accumulate(self, parts, shape=None) -> str:
        """A variable holding sum_r coeff_r * part_r, added up in place.

        parts: (coefficient source, kind, source) with kind "mat" (a matrix),
        "vec" (diag(v)) or "eye" (the identity; source unused).  The sum
        starts from one matrix part times its coefficient, or from two parts
        with coefficients +-1 added, in one pass into a workspace array;
        further parts with coefficient +-1 are added or subtracted in place,
        others scaled into a second workspace array first; diagonal parts go
        to the diagonal only.  ``shape``: the (rows, cols) sources, needed
        only when no part is a matrix.  A lone matrix part with coefficient
        1 is returned as it is.
        """
        unit = ("(1)", "(-1)")
        mats = [p for p in parts if p[1] == "mat"]
        if len(parts) == 1 and mats and parts[0][0] == "(1)":
            return parts[0][2]
        rest = list(parts)
        if mats:
            v = mats[0][2]
            lay = "F" if self.layout.get(v) == "F" else "C"
            rows, cols = f"{v}.shape[0]", f"{v}.shape[1]"
            scaled = [p for p in mats if p[0] not in unit]
            plus = [p for p in mats if p[0] == "(1)"]
            if scaled:                      # acc = c * A
                first = scaled[0]
                rest.remove(first)
                _, acc = self.emit_into("np.multiply", (first[2], first[0]), rows, cols, lay)
            elif plus and len(mats) > 1:    # acc = A + B or A - B
                a = plus[0]
                b = next(p for p in mats if p is not a)
                rest.remove(a)
                rest.remove(b)
                func = "np.add" if b[0] == "(1)" else "np.subtract"
                _, acc = self.emit_into(func, (a[2], b[2]), rows, cols, lay)
            elif plus:                      # A plus diagonal parts
                rest.remove(plus[0])
                acc = self.new_array(rows, cols, lay, f"np.empty_like({plus[0][2]})")
                self.lines.append(f"    np.copyto({acc}, {plus[0][2]})")
            else:                           # acc = -A
                rest.remove(mats[0])
                _, acc = self.emit_into("np.negative", (v,), rows, cols, lay)
        else:
            if shape is None:
                src = next(p[2] for p in parts if p[1] == "vec")
                shape = (f"{src}.shape[0]", f"{src}.shape[0]")
            acc = self.new_array(shape[0], shape[1], "C", f"np.empty(({shape[0]}, {shape[1]}))")
            self.lines.append(f"    {acc}[...] = 0.0")
        scratch = None
        for c, kind, v in rest:
            if kind == "mat":
                if c in unit:
                    self.lines.append(f"    {acc} {'+' if c == '(1)' else '-'}= {v}")
                    continue
                if scratch is None:
                    scratch = self.slots
                    self.slots += 1
                self.lines.append(f"    {acc} += np.multiply({v}, {c}, "
                                  f"out=_work({scratch}, {acc}.shape[0], {acc}.shape[1]))")
            elif kind == "vec":
                term = v if c == "(1)" else f"{c} * {v}"
                self.lines.append(f"    np.einsum('ii->i', {acc})[...] += {term}")
            else:
                self.lines.append(f"    np.einsum('ii->i', {acc})[...] += {c}")
        return acc

    def trace(self, word) -> str:
        if len(word) == 1:
            kind, v = self.value(word)
            return f"np.trace({v})" if kind == "mat" else f"np.sum({v})"
        # any cyclic rotation of the word or of its transpose has the same trace
        cache: dict = {}
        best = None
        for base in (tuple(word), transpose(word)):
            for r in range(len(base)):
                w = base[r:] + base[:r]
                for k in range(len(w) - 1, 0, -1):
                    c = self._cost(w[:k], cache) + self._cost(w[k:], cache)
                    if best is None or c < best[0]:
                        best = (c, w, k)
        _, w, k = best
        (lk, lv), (rk, rv) = self.value(w[:k]), self.value(w[k:])
        if lk == "mat" and rk == "mat":
            # tr(A B) = sum_ij A_ij B_ji: one vdot of two row-major arrays when their layouts
            # pair up (vdot of a transposed operand copies it: 30x slower at d = 256), else
            # einsum, which reads any layout in place
            al = self._aligned(lv, rv)
            if al is None:
                if rv.endswith(".T"):
                    return f"np.einsum('ij,ij->', {lv}, {rv[:-2]})"
                if lv.endswith(".T"):
                    return f"np.einsum('ij,ij->', {lv[:-2]}, {rv})"
                return f"np.einsum('ij,ji->', {lv}, {rv})"
            if al[2] == "CF":
                return f"np.vdot({al[0]}, {self._flip(al[1])})"
            return f"np.vdot({self._flip(al[0])}, {al[1]})"
        left = lv if lk == "vec" else f"np.diagonal({lv})"
        right = rv if rk == "vec" else f"np.diagonal({rv})"
        return f"np.dot({left}, {right})"


def numpy_source(forms: Mapping, func_name: str, workspace: bool = True) -> tuple[str, list[str]]:
    """Source of one NumPy function evaluating ``forms`` (a mapping of forms).

    With one form under the key None the function returns its value; else it
    returns a tuple of the values in the mapping's order, and products shared
    between the forms are computed once.  Arguments: the matrix symbols
    (sorted by name), then the coefficient symbols (sorted).  With
    ``workspace=False`` every intermediate is a new array (for comparison).
    """
    forms = list(forms.items())
    syms = sorted({s for _, f in forms for s in f.symbols()}, key=lambda s: s.name)
    coeff_syms = sorted({s for _, f in forms for s in f.coefficient_symbols()},
                        key=lambda s: s.name)
    names = [s.name for s in syms] + [s.name for s in coeff_syms]
    for n in names:
        if not n.isidentifier():
            raise ModelError(f"symbol name {n!r} is not a Python identifier")
    scalar_names = {s.name for s in syms if s.shape == (1, 1)}
    em = _Emitter()

    dim = _dim_namer(syms, names)

    values = []
    for _, form in forms:
        if form.shape is None:
            terms = []
            for t in form.terms:
                factors = [f"({sp.pycode(t.coeff)})"] + [s.name for s in t.scalars]
                terms.append(" * ".join(factors + [em.trace(w) for w in t.traces]))
            values.append(_sum_of(terms, None, dim))
            continue
        parts, matrix_terms = [], []
        for t in form.terms:
            factors = [f"({sp.pycode(t.coeff)})"] + [s.name for s in t.scalars]
            factors += [em.trace(w) for w in t.traces]
            if t.word:
                matrix_terms.append((" * ".join(factors), t.word))
            else:
                parts.append((" * ".join(factors), "eye", None))
        if matrix_terms:
            parts = em.matrix_sum(matrix_terms) + parts
        shape = (dim(form.shape[0]), dim(form.shape[1]))
        value = em.accumulate(parts, shape) if parts else f"np.zeros(({shape[0]}, {shape[1]}))"
        if value in em.layout and value not in em.buffered and not value.startswith("_m"):
            value = f"np.array({value})"         # an argument itself: return a copy
        values.append(value)
    for v in (values if workspace else list(em.buffered)):
        em.unbuffer(v)
    if not workspace:
        em.lines = [re.sub(r", out=_work\([^()]*\)\)", ")", line) for line in em.lines]
    head = _numpy_head(func_name, names, scalar_names, syms)
    if len(forms) == 1 and forms[0][0] is None:
        ret = [f"    return {values[0]}"]
    else:
        ret = [f"    _v{i} = {v}" for i, v in enumerate(values)]
        ret.append(f"    return ({', '.join(f'_v{i}' for i in range(len(values)))},)")
    return "\n".join(head + em.lines + ret) + "\n", names


def _workspace() -> Callable:
    """_work(slot, rows, cols, fortran=False): an array kept for ``slot`` between calls,
    one set per thread, new when the shape changes."""
    local = threading.local()

    def work(slot: int, rows: int, cols: int, fortran: bool = False) -> np.ndarray:
        store = local.__dict__.setdefault("arrays", {})
        a = store.get(slot)
        if a is None or a.shape != (rows, cols):
            a = np.empty((cols, rows)).T if fortran else np.empty((rows, cols))
            store[slot] = a
        return a

    return work


def _compile_numpy(source: str, names, func_name: str) -> Callable:
    """Execute a generated source; the function carries ``source``, ``arguments`` and
    ``products`` (the number of matrix products it performs)."""
    namespace = {"np": np, "_work": _workspace()}
    exec(compile(source, f"<symicl matrix-level {func_name}>", "exec"), namespace)
    fn = namespace[func_name]
    fn.source = source
    fn.arguments = tuple(names)
    fn.products = source.count("np.matmul(") + source.count(" @ ")
    return fn


def to_numpy_many(forms: Mapping, func_name: str = "f", workspace: bool = True) -> Callable:
    """One NumPy function returning the tuple of ``forms``' values (shared products once;
    ``workspace``: intermediates kept between calls, see :func:`numpy_source`)."""
    forms = dict(forms)
    if None in forms:
        raise ModelError("to_numpy_many: name each form")
    source, names = numpy_source(forms, func_name, workspace)
    fn = _compile_numpy(source, names, func_name)
    fn.outputs = tuple(forms)
    return fn
