"""Write a larger 'photo' with a held-out toy face drawn into it, turned and enlarged, for the quickstart's
last edit: `python scripts/pasted_face.py FACE.jpg OUT.png` (background: scikit-image's cameraman when
installed, else a generated backdrop)."""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from faderkit_plugins.toyfaces.scene import backdrop, place


def main(face_path: str, out_path: str) -> None:
    face = np.asarray(Image.open(face_path).convert("RGB"))
    try:
        import skimage

        bg = np.asarray(Image.open(Path(skimage.__file__).parent / "data" / "camera.png").convert("RGB")
                        .resize((1200, 900), Image.BICUBIC))
    except ImportError:
        bg = backdrop(1200, 900)
    photo, _ = place(face, bg, angle=18, scale=2.2, centre=(760, 430))
    Image.fromarray(photo).save(out_path)
    print(out_path)


if __name__ == "__main__":
    main(*sys.argv[1:3])
