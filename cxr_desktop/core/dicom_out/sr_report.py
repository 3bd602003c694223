"""The prediction as a TID 1500 Measurement Report in a Comprehensive 3D SR (highdicom).

The tree, under the report's observation context (the model as device observer: UID from the
run, name and model the architecture, serial number the run id):

- one Measurement Group (TID 1501) per class, its finding type the class, referencing the
  source image: "Probability" (DCM 122157, UCUM "1"), "Threshold Value" (DCM 122411) for the
  classes the run's threshold decides, and "Presence of property" Present or Absent (the
  predicted findings are Present); the algorithm (TID 4019) names the model and the run;
- with a CAM peak, a Planar ROI group (TID 1410): an SCOORD POINT at the peak pixel's centre
  (column + 0.5, row + 0.5; see ``results``) on the source image, its finding type the class;
- a "Comment" (DCM 121106) saying it is for research use, not for diagnosis.

Class names are coded in the private scheme ``99CXRD`` (declared in the Coding Scheme
Identification Sequence): they are the run's own labels, not SNOMED concepts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import highdicom as hd
import numpy as np
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from pydicom.sr.codedict import codes

from cxr_desktop.core.dicom_out.results import (
    MANUFACTURER,
    RESEARCH_NOTE,
    DicomSource,
    Placement,
    RunInfo,
)

if TYPE_CHECKING:
    from cxr_desktop.core.infer import CamResult, Prediction

CLASS_SCHEME = "99CXRD"
CLASS_SCHEME_NAME = "cxr-desktop class labels"
_UNITLESS = codes.UCUM.NoUnits


def class_concept(name: str) -> hd.sr.CodedConcept:
    """A run's class as a code of the private scheme; the label is both value and meaning
    (a backslash, the DICOM value separator, becomes a slash)."""
    label = name.replace("\\", "/") or "?"
    return hd.sr.CodedConcept(value=label, scheme_designator=CLASS_SCHEME, meaning=label[:64])


def algorithm(run: RunInfo, method: str | None = None) -> hd.sr.AlgorithmIdentification:
    name = f"{run.model_name} {method}" if method else run.model_name
    return hd.sr.AlgorithmIdentification(
        name=name, version=run.model_version, manufacturer=MANUFACTURER,
        parameters=[f"run {run.run_id}", f"cxr-desktop {run.app_version}"])


def _observation_context(run: RunInfo) -> hd.sr.ObservationContext:
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=run.device_uid, name=run.model_name, manufacturer_name=MANUFACTURER,
        model_name=run.model_name, serial_number=run.run_id)
    return hd.sr.ObservationContext(observer_device_context=hd.sr.ObserverContext(
        observer_type=codes.DCM.Device, observer_identifying_attributes=device))


def _class_group(dicom: DicomSource, name: str, probability: float, prediction: Prediction,
                 run: RunInfo) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    measurements = [hd.sr.Measurement(name=codes.DCM.Probability, value=float(probability),
                                      unit=_UNITLESS)]
    if name in run.threshold_classes:
        measurements.append(hd.sr.Measurement(name=codes.DCM.ThresholdValue,
                                              value=float(prediction.threshold),
                                              unit=_UNITLESS))
    presence = codes.SCT.Present if name in prediction.positives else codes.SCT.Absent
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(),
                                                     identifier=f"{name} probability"),
        finding_type=class_concept(name),
        algorithm_id=algorithm(run),
        measurements=measurements,
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(codes.DCM.PresenceOfProperty,
                                                             presence)],
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(dicom.header)],
    )


def _peak_group(dicom: DicomSource, cam: CamResult, run: RunInfo
                ) -> hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    assert cam.peak is not None
    x, y = cam.peak
    region = hd.sr.ImageRegion(
        graphic_type=hd.sr.GraphicTypeValues.POINT,
        graphic_data=np.array([[x + 0.5, y + 0.5]]),
        source_image=hd.sr.SourceImageForRegion.from_source_image(dicom.header))
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=hd.UID(), identifier=f"{cam.method} peak of {cam.target_class}"),
        referenced_region=region,
        finding_type=class_concept(cam.target_class),
        algorithm_id=algorithm(run, f"{cam.method} ({cam.layer})"),
    )


def build_sr(dicom: DicomSource, prediction: Prediction, cam: CamResult | None, run: RunInfo,
             place: Placement) -> hd.sr.Comprehensive3DSR:
    """The SR of one prediction (and its CAM peak) in the source image's study."""
    groups: list = [_class_group(dicom, name, p, prediction, run)
                    for name, p in prediction.probabilities.items()]
    if cam is not None and cam.peak is not None:
        groups.append(_peak_group(dicom, cam, run))
    report = hd.sr.MeasurementReport(
        observation_context=_observation_context(run),
        procedure_reported=codes.SCT.PlainRadiography,
        imaging_measurements=groups,
    )
    # TID 1500 is extensible: the research-use note rides along as a plain comment.
    report[0].ContentSequence.append(hd.sr.TextContentItem(
        name=codes.DCM.Comment, value=f"{RESEARCH_NOTE}. Made by cxr-desktop "
        f"{run.app_version} with {run.label} ({run.model_version}).",
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS))
    return hd.sr.Comprehensive3DSR(
        evidence=[dicom.header],
        content=report[0],
        series_instance_uid=place.series_uid,
        series_number=place.series_number,
        sop_instance_uid=place.sop_uid,
        instance_number=place.instance_number,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=False,
        is_verified=False,
        series_description=place.series_description,
        manufacturer_model_name=run.model_name,
        software_versions=run.app_version,
        device_serial_number=run.run_id[:64],
        coding_schemes=[CodingSchemeIdentificationItem(
            designator=CLASS_SCHEME, name=CLASS_SCHEME_NAME,
            responsible_organization=MANUFACTURER)],
    )
