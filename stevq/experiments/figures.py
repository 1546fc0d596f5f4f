"""How every experiment makes a figure: ``subplots``, pyplot's call without pyplot. A matplotlib
``Figure`` built directly needs no GUI backend (a run on a server or in a worker process draws the
same PNGs) and is never registered with pyplot, so a run of many parts leaves no figure open;
``runio.save_figure`` writes it."""


def subplots(rows=1, columns=1, *, figsize=None, layout=None, **options):
    """(Figure, axes) as ``matplotlib.pyplot.subplots(rows, columns, figsize=..., layout=...,
    **options)`` returns them; ``options`` go to ``Figure.subplots`` (squeeze, sharex, sharey)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, layout=layout)
    return figure, figure.subplots(rows, columns, **options)


def colours(name="tab10"):
    """The matplotlib colour map ``name``."""
    from matplotlib import colormaps

    return colormaps[name]
