"""The data sets of the MNIST layout that stevq knows, and where each comes from.

A ``Source`` names a data set of the four MNIST-layout IDX files (``FILES``): its mirrors, the
published SHA-256 of each file, the system directories searched after the cache, and the sample
shipped inside the package, if any. ``MNIST`` and ``FASHION_MNIST`` are the two sources;
``MNIST_CLASSES`` and ``FASHION_MNIST_CLASSES`` name their ten classes. ``stevq.data.mnist`` finds,
checks and loads their files.
"""

import dataclasses

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
MNIST_CLASSES = tuple(str(digit) for digit in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a data set of the four MNIST-layout files comes from and how its files are checked.

    ``checksums`` maps each file name to the accepted SHA-256 digests (of the stored bytes or of the
    decompressed IDX content); ``system_dirs`` are searched after the cache; ``hint`` is added to
    the message when the data cannot be found; ``sample`` names the small sample shipped in the
    package (``stevq.data.sample``), if there is one.
    """

    name: str
    title: str
    mirrors: tuple
    checksums: dict
    system_dirs: tuple = ()
    hint: str = ""
    sample: str | None = None


# Published SHA-256 of each file: first of the .gz archive as served by the mirrors, then of the
# IDX content inside it. Where they come from (checked while writing this module):
# - MNIST: all eight digests appear, identical, in several independent public projects that pin
#   these files (some list the .gz and the content digest side by side, with the .gz sizes
#   9912422, 28881, 1648877 and 4542 bytes given on Yann LeCun's page). No copy of MNIST was at
#   hand to recompute them, so they are confirmed by agreement between sources only.
# - Fashion-MNIST: the .gz digests appear, identical, in several independent projects, some next to
#   the MD5s of the Fashion-MNIST README (which Debian ships in /usr/share/doc/dataset-fashion-mnist).
#   The content digests were recomputed here from the Debian package dataset-fashion-mnist
#   (0.0~git20200523.55506a9-1) and equal those published by other projects from the official
#   archives. Debian re-compressed the archives (their .gz bytes and MD5s differ, their content
#   does not), which is why the content digests are accepted too.
MNIST = Source(
    name="mnist",
    title="MNIST",
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    checksums={
        "train-images-idx3-ubyte.gz": (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        ),
        "train-labels-idx1-ubyte.gz": (
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ),
        "t10k-images-idx3-ubyte.gz": (
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
    },
)

FASHION_MNIST = Source(
    name="fashion-mnist",
    title="Fashion-MNIST",
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    checksums={
        "train-images-idx3-ubyte.gz": (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        "train-labels-idx1-ubyte.gz": (
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        "t10k-images-idx3-ubyte.gz": (
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    },
    system_dirs=(DEBIAN_FASHION_MNIST,),
    sample="fashion_mnist_sample.npz",
    hint="On Debian or Ubuntu, `apt-get install dataset-fashion-mnist` installs them in "
    f"{DEBIAN_FASHION_MNIST}, which is searched too.",
)
