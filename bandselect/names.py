"""Names of the campaign-store data model, defined once and used everywhere."""

from __future__ import annotations

# Dimensions of an acquisition's cube.
DIM_Y = "y"
DIM_X = "x"
DIM_BAND = "band"
DIM_RGB = "rgb"

# Variables of an acquisition group.
VAR_CUBE = "cube"
VAR_MASK = "mask"  # labels (y, x): 0 = negative / background, >0 = class id
VAR_VALID = "valid"  # (y, x) bool, False where the source had NaN/Inf and the user asked to mask them
# Not "rgb": a variable named like its dimension reads back from zarr as a coordinate.
VAR_COMPOSITE = "composite"

# Coordinates.
COORD_WAVELENGTH = "wavelength"
WAVELENGTH_UNITS = "nm"

# Provenance attributes of an acquisition.
ATTR_ACQUISITION_ID = "acquisition_id"
ATTR_SOURCE_FILE = "source_file"
ATTR_SOURCE_SHA256 = "source_sha256"
ATTR_SENSOR = "sensor"
ATTR_ACQUISITION_TIME = "acquisition_time"
ATTR_SOURCE_FORMAT = "source_format"
ATTR_SOURCE_DTYPE = "source_dtype"  # the cube's dtype in the source file, before the float32 cast
ATTR_CONTENT_SHA256 = "content_sha256"  # digest of the stored content; the acquisition id derives from it
ATTR_SOURCE_WAVELENGTH_UNITS = "source_wavelength_units"  # units as the source gave them (converted to nm)
ATTR_SOURCE_BAND_ORDER = "source_band_order"  # source band index of each stored band, when re-sorted
ATTR_DISCRIMINATIVE_BANDS = "discriminative_bands"  # synthetic scenes: band indices of the planted answer
# Per-band min/max of the stored cube over its valid pixels, recorded at ingest (ingest sees every pixel):
# the statistics engine derives its histogram edges from them and reads the store once. Empty lists when
# the acquisition has no valid pixel.
ATTR_BAND_MINIMUM = "band_minimum"
ATTR_BAND_MAXIMUM = "band_maximum"
# The same per label of the mask (labels in ascending order, one row of C minima/maxima each; empty lists
# when no pixel is valid; absent when the acquisition has no mask or more than MAX_RECORDED_CLASSES
# labels): the edges of the pixels that count under an ignore_label, known before the pass as well.
ATTR_CLASS_LABELS = "class_labels"
ATTR_CLASS_BAND_MINIMUM = "class_band_minimum"
ATTR_CLASS_BAND_MAXIMUM = "class_band_maximum"
CLASS_RANGE_ATTRS = (ATTR_CLASS_LABELS, ATTR_CLASS_BAND_MINIMUM, ATTR_CLASS_BAND_MAXIMUM)
#: Labels per acquisition up to which ingest records per-class ranges: at most 64 × C × 2 numbers in the
#: attributes (≈ 0.6 MB of JSON for 224 bands, read at every open); land-cover scenes have 10-20.
MAX_RECORDED_CLASSES = 64

# Ingest corrections, recorded with the acquisition (what the reader did that the source did not say).
ATTR_INGEST_WARNINGS = "ingest_warnings"  # list of one-line notes (defaults assumed, units inferred, ...)
ATTR_SOURCE_BYTE_ORDER = "source_byte_order"  # "little" or "big": how a raw binary source was read
ATTR_DROPPED_BANDS = "dropped_bad_bands"  # source band indices left out (ENVI bad band list, "bbl")
ATTR_DATA_IGNORE_VALUE = "data_ignore_value"  # the source's no-data value; those pixels are not valid
ATTR_SOURCE_AXIS_ORDER = "source_axis_order"  # axis order of the source array, e.g. "band,y,x"

# Integrity and replacement (bandselect.store.integrity, bandselect.store.archive).
ATTR_ALL_CHUNKS_WRITTEN = "all_chunks_written"  # True: every chunk of every array was written (none implied)
ATTR_REPLACES = "replaces_acquisition"  # id of the acquisition of the same source file this one replaced
ATTR_REPLACED_SHA256 = "replaced_content_sha256"  # the replaced acquisition's content digest
ATTR_REPLACED_AT = "replaced_at"  # when (UTC, ISO 8601)

# Georeference, after rioxarray's convention: a scalar coordinate whose attributes hold the CRS (WKT) and
# the affine transform (GDAL order), named by the ``grid_mapping`` attribute of every (y, x) variable.
COORD_SPATIAL_REF = "spatial_ref"
ATTR_GRID_MAPPING = "grid_mapping"

# Store-level marker: a zarr group is a campaign store when its attributes carry this key.
STORE_FORMAT_KEY = "bandselect_campaign"
STORE_FORMAT_VERSION = 1

# Pipeline data-source node and its ports (the seed's `data.cube`, `data.mask`, `data.wavelengths`).
DATA_NODE = "data"
PORT_CUBE = "cube"
PORT_MASK = "mask"
PORT_WAVELENGTHS = "wavelengths"
# Optional data ports the streamed datamodules fill: ``valid`` (B, H, W, 1) bool, False on ignored and
# invalid pixels (left out of every statistic); ``labels`` (B, H, W, 1) int64, the class ids beside the
# bool ``mask`` (what a multi-class selector's statistics compare).
PORT_VALID = "valid"
PORT_LABELS = "labels"
