"""A convolution's products tap by tap: the fast paths of ``conv2d``'s two routes on NumPy.

``conv2d`` multiplies the patches by the kernel (``block_patches(x) @ K``) or, for a stride-1 layer
with fewer output than input channels, every padded pixel by every tap's kernel and adds the shifted
products (``conv._tap_conv2d``). Either way numbers then move between a matrix whose columns are
(tap, channel) pairs and an image: in the gradient of the first route every row of the patches'
gradient g K^T is added back onto its patch (``add_block_patches``), in the second route's forward
pass the products are added into the output at their shifts. With C = 16 channels each of these
moves copies runs of only C numbers, and NumPy spends more time starting a run than moving it.

Here those products are made tap by tap instead, one batched matmul

    P_t = A @ K_t        (t = 0 .. T - 1: A is (M, C_in), K_t the tap's (C_in, C_out) slice of K)

so that each tap's products form one image (N, H, W, C_out), and moving a tap's window to or from
an image copies runs of whole image rows (W C_out numbers): three to four times faster at 16 channels.
Every product is the same dot product over the same C_in numbers and the taps are added in the same
order, so on OpenBLAS the results are the reference's bit for bit (a BLAS may sum a matmul of another
shape in another order; the results then agree to rounding). The gradients that need the products'
gradient as one (M, T C_out) matrix, the kernel's and the tap route's input gradient, form it once and
multiply as the reference does.

    patch_conv(x, rows, K, ...)   block_patches(x) @ K (``rows`` = block_patches(x), not traced);
                                  d x by the taps' products g K_t^T added into the image tap by tap
                                  (reference: add_block_patches(g K^T)), d K = rows^T g
    tap_conv(padded, K, ...)      sum_t (padded @ K_t) shifted by tap t (reference: conv._shift_add
                                  of padded @ K); both gradients from one (M, T C_out) matrix
"""
from autograd.extend import defvjp, defvjp_argnums

from ..backend import device_of, namespace_of
from ._util import primitive
from .patches import _from_blocks, _grid


def tap_products(a, kernel, taps):
    """(T, M, O) products a @ K_t of an (M, C) matrix with each tap's (C, O) slice of a (C, T O) kernel."""
    xp = namespace_of(a)
    c = kernel.shape[0]
    by_tap = xp.permute_dims(xp.reshape(kernel, (c, taps, -1)), (1, 0, 2))
    return xp.matmul(xp.reshape(a, (1,) + tuple(a.shape)), by_tap)


@primitive
def patch_conv(x, rows, kernel, kh, kw, stride, padding):
    """rows @ kernel, rows = block_patches(x, kh, kw, stride, padding): the (N Ho Wo, O) products of a
    channels-last image x (N, H, W, C) with a kernel in block order (``conv2d``)."""
    return rows @ kernel


def add_tap_products(g, kernel, image_shape, kh, kw, stride, padding):
    """add_block_patches(g @ kernel^T, image_shape, ...) computed tap by tap: block tap t's (N Ho Wo,
    s s C) products g K_t^T are one image, added at their shift into the block image."""
    xp = namespace_of(g)
    n, h, w, c = image_shape
    (out_h, bh, hb), (out_w, bw, wb) = _grid(h, kh, stride, padding), _grid(w, kw, stride, padding)
    depth = stride * stride * c
    by_tap = xp.matrix_transpose(xp.reshape(kernel, (bh * bw, depth, kernel.shape[1])))
    products = xp.reshape(xp.matmul(xp.reshape(g, (1,) + tuple(g.shape)), by_tap), (bh * bw, n, out_h, out_w, depth))
    blocks = xp.zeros((n, hb, wb, depth), dtype=g.dtype, device=device_of(g))
    for a in range(bh):
        for b in range(bw):
            blocks[:, a:a + out_h, b:b + out_w, :] += products[a * bw + b, ...]
    return _from_blocks(blocks, stride, padding, image_shape)


defvjp(patch_conv,
       lambda ans, x, rows, kernel, kh, kw, stride, padding:
           lambda g: add_tap_products(g, kernel, x.shape, kh, kw, stride, padding),
       None,
       lambda ans, x, rows, kernel, kh, kw, stride, padding: lambda g: namespace_of(g).matrix_transpose(rows) @ g)


def _tap_windows(kh, kw, out_h, out_w):
    """(tap, rows, columns) of every kernel tap: tap i kw + j reads the window at offset (i, j)."""
    return [(i * kw + j, slice(i, i + out_h), slice(j, j + out_w)) for i in range(kh) for j in range(kw)]


@primitive
def tap_conv(padded, kernel, kh, kw, out_h, out_w):
    """out[n, y, x, o] = sum_{i, j} (padded @ K_{i kw + j})[n, y + i, x + j, o]: a stride-1 convolution
    of a zero-padded channels-last image (N, Hp, Wp, C) with a kernel (C, kh kw O), tap by tap."""
    xp = namespace_of(padded)
    n, hp, wp, c = padded.shape
    taps = kh * kw
    products = xp.reshape(tap_products(xp.reshape(padded, (n * hp * wp, c)), kernel, taps), (taps, n, hp, wp, -1))
    windows = _tap_windows(kh, kw, out_h, out_w)
    (t0, r0, c0), (t1, r1, c1) = windows[0], windows[1]
    out = products[t0, :, r0, c0, :] + products[t1, :, r1, c1, :]
    for t, rows, cols in windows[2:]:
        out += products[t, :, rows, cols, :]
    return out


def _tap_conv_vjp(argnums, ans, args, kwargs):
    """The products' gradient G (every tap's window receives g), as one (N Hp Wp, T O) matrix, formed
    once for both gradients: d padded = G K^T, d K = padded^T G."""
    padded, kernel, kh, kw, out_h, out_w = args
    n, hp, wp, c = padded.shape

    def vjp(g):
        xp = namespace_of(g)
        grad = xp.zeros((n, hp, wp, kh * kw, g.shape[-1]), dtype=g.dtype, device=device_of(g))
        for t, rows, cols in _tap_windows(kh, kw, out_h, out_w):
            grad[:, rows, cols, t, :] = g
        grad = xp.reshape(grad, (n * hp * wp, -1))
        found = {0: lambda: xp.reshape(grad @ xp.matrix_transpose(kernel), padded.shape),
                 1: lambda: xp.matrix_transpose(xp.reshape(padded, (n * hp * wp, c))) @ grad}
        return tuple(found[argnum]() for argnum in argnums)
    return vjp


defvjp_argnums(tap_conv, _tap_conv_vjp)
