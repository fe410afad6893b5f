"""Finding the files that scripts/get_models.sh fetches into models/."""
from pathlib import Path


def find_data(rel):
    """models/<rel> under the working directory or the repository the package was built from, else None."""
    here = Path(__file__).resolve().parent
    for root in (Path.cwd(), here.parent, here.parent.parent):
        path = root / "models" / rel
        if path.is_file():
            return str(path)
    return None
