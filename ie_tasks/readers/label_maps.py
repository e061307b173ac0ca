"""Type names: raw dataset tags -> the natural-language names the papers use.

InstructUIE's IE INSTRUCTIONS copies rename the original tags (CrossNER
`misc` -> `else`, `organisation` -> `organization`, `programlang` ->
`program language`, MIT `RATINGS_AVERAGE` -> `average ratings`,
`Restaurant_Name` -> `Restaurant Name`, ...). The maps below reproduce that
renaming exactly (tests/test_readers_compare.py checks them against the real
`labels.json` files), so datasets read from their original layout can be
registered with the same type names as the IE INSTRUCTIONS copy.
"""
from __future__ import annotations

# CrossNER (all five domains and its CoNLL-2003 copy): raw tag -> IE INSTRUCTIONS.
CROSSNER_TO_IE_INSTRUCTIONS: dict[str, str] = {
    "misc": "else",
    "organisation": "organization",
    "programlang": "program language",
    "literarygenre": "literary genre",
    "musicalartist": "musical artist",
    "musicgenre": "music genre",
    "musicalinstrument": "musical instrument",
    "politicalparty": "political party",
    "chemicalcompound": "chemical compound",
    "chemicalelement": "chemical element",
    "astronomicalobject": "astronomical object",
    "academicjournal": "academic journal",
    # Identity for the rest, listed so the map doubles as the raw tag set.
    "algorithm": "algorithm", "conference": "conference", "country": "country",
    "field": "field", "location": "location", "metrics": "metrics",
    "person": "person", "product": "product", "researcher": "researcher",
    "task": "task", "university": "university", "award": "award",
    "book": "book", "event": "event", "magazine": "magazine", "poem": "poem",
    "writer": "writer", "album": "album", "band": "band", "song": "song",
    "election": "election", "politician": "politician",
    "discipline": "discipline", "enzyme": "enzyme", "protein": "protein",
    "scientist": "scientist", "theory": "theory",
}

MIT_MOVIE_TO_IE_INSTRUCTIONS: dict[str, str] = {
    "ACTOR": "actor", "CHARACTER": "character", "DIRECTOR": "director",
    "GENRE": "genre", "PLOT": "plot", "RATING": "rating",
    "RATINGS_AVERAGE": "average ratings", "REVIEW": "review", "SONG": "song",
    "TITLE": "title", "TRAILER": "trailer", "YEAR": "year",
}

# The IE INSTRUCTIONS copy keeps MIT Restaurant's capitalisation.
MIT_RESTAURANT_TO_IE_INSTRUCTIONS: dict[str, str] = {
    "Amenity": "Amenity", "Cuisine": "Cuisine", "Dish": "Dish",
    "Hours": "Hours", "Location": "Location", "Price": "Price",
    "Rating": "Rating", "Restaurant_Name": "Restaurant Name",
}

# The label universe (in the order of each labels.json) of the datasets that
# exist in both layouts, keyed by our dataset name.
IE_INSTRUCTIONS_LABELS: dict[str, tuple[str, ...]] = {
    "conll2003": ("location", "else", "organization", "person"),
    "crossner_ai": (
        "algorithm", "conference", "else", "product", "task", "field",
        "metrics", "organization", "researcher", "program language", "country",
        "location", "person", "university"),
    "crossner_literature": (
        "person", "country", "writer", "else", "book", "award",
        "literary genre", "poem", "location", "magazine", "event",
        "organization"),
    "crossner_music": (
        "location", "event", "country", "band", "person", "song",
        "musical artist", "music genre", "else", "album", "organization",
        "award", "musical instrument"),
    "crossner_politics": (
        "election", "else", "political party", "organization", "politician",
        "person", "event", "country", "location"),
    "crossner_science": (
        "chemical compound", "scientist", "location", "astronomical object",
        "else", "protein", "person", "university", "theory", "enzyme",
        "organization", "award", "country", "event", "discipline",
        "chemical element", "academic journal"),
    "mit_movie": (
        "genre", "year", "plot", "average ratings", "actor", "title", "song",
        "character", "rating", "review", "director", "trailer"),
    "mit_restaurant": (
        "Rating", "Location", "Amenity", "Cuisine", "Hours", "Price", "Dish",
        "Restaurant Name"),
}

# Our dataset name -> (original folder under the data root, IE INSTRUCTIONS
# folder under ie_instructions/NER/, raw->IE INSTRUCTIONS type map).
ORIGINAL_LAYOUT: dict[str, tuple[str, str, dict[str, str]]] = {
    "conll2003": ("crossner/conll2003", "CoNLL 2003",
                  CROSSNER_TO_IE_INSTRUCTIONS),
    "crossner_ai": ("crossner/ai", "CrossNER_AI", CROSSNER_TO_IE_INSTRUCTIONS),
    "crossner_literature": ("crossner/literature", "CrossNER_literature",
                            CROSSNER_TO_IE_INSTRUCTIONS),
    "crossner_music": ("crossner/music", "CrossNER_music",
                       CROSSNER_TO_IE_INSTRUCTIONS),
    "crossner_politics": ("crossner/politics", "CrossNER_politics",
                          CROSSNER_TO_IE_INSTRUCTIONS),
    "crossner_science": ("crossner/science", "CrossNER_science",
                         CROSSNER_TO_IE_INSTRUCTIONS),
    "mit_movie": ("mit/movie", "mit-movie", MIT_MOVIE_TO_IE_INSTRUCTIONS),
    "mit_restaurant": ("mit/restaurant", "mit-restaurant",
                       MIT_RESTAURANT_TO_IE_INSTRUCTIONS),
}

# CoNLL04 (SpERT short types) -> the names InstructUIE's conll04 copy uses.
CONLL04_ENTITY_TYPES: dict[str, str] = {
    "Loc": "location", "Org": "organization", "Peop": "people",
    "Other": "other",
}
CONLL04_RELATION_TYPES: dict[str, str] = {
    "Work_For": "work for", "Kill": "kill", "OrgBased_In": "organization in",
    "Live_In": "live in", "Located_In": "located in",
}

# CASIE subtypes and roles -> readable lower-case names.
CASIE_EVENT_TYPES: dict[str, str] = {
    "Databreach": "data breach", "Phishing": "phishing", "Ransom": "ransom",
    "DiscoverVulnerability": "discover vulnerability",
    "PatchVulnerability": "patch vulnerability",
}


def casie_role_name(role: str) -> str:
  """'Compromised-Data' -> 'compromised data', 'Vulnerable_System' -> ...."""
  return role.replace("-", " ").replace("_", " ").lower()
