"""EC2 (and Eucalyptus compute) error codes, one named class each.

Raise these instead of spelling a code inline: ``raise IncorrectInstanceState("...")``.
Codes every Query API shares (InvalidParameterValue, MissingParameter, ...) are in
:mod:`eucalite.errors`. Statuses are AWS's: 400 unless a class says otherwise. Add a class
here when a new code is needed; the cloud controller, the cluster controller and the storage
controller all raise from this one module.
"""
from __future__ import annotations

from . import AwsError, ClientError


class AuthFailure(AwsError):
    code = "AuthFailure"
    status = 403


class IdempotentParameterMismatch(ClientError):
    code = "IdempotentParameterMismatch"


class IncorrectInstanceState(ClientError):
    code = "IncorrectInstanceState"


class IncorrectModificationState(ClientError):
    code = "IncorrectModificationState"


class VolumeModificationRateExceeded(ClientError):
    code = "VolumeModificationRateExceeded"


class IncorrectState(ClientError):
    code = "IncorrectState"


class InsufficientFreeAddressesInSubnet(ClientError):
    code = "InsufficientFreeAddressesInSubnet"


class InsufficientInstanceCapacity(AwsError):
    code = "InsufficientInstanceCapacity"
    status = 500


class InvalidAMIAttributeItemValue(ClientError):
    code = "InvalidAMIAttributeItemValue"


class InvalidAMIIDMalformed(ClientError):
    code = "InvalidAMIID.Malformed"


class InvalidAMIIDNotFound(ClientError):
    code = "InvalidAMIID.NotFound"


class InvalidAMIIDUnavailable(ClientError):
    code = "InvalidAMIID.Unavailable"


class InvalidAMINameDuplicate(ClientError):
    code = "InvalidAMIName.Duplicate"


class InvalidAMINameMalformed(ClientError):
    code = "InvalidAMIName.Malformed"


class InvalidAllocationIDNotFound(ClientError):
    code = "InvalidAllocationID.NotFound"


class InvalidAttachmentNotFound(ClientError):
    code = "InvalidAttachment.NotFound"


class InvalidBlockDeviceMapping(ClientError):
    code = "InvalidBlockDeviceMapping"


class InvalidGroupNotFound(ClientError):
    code = "InvalidGroup.NotFound"


class InvalidID(ClientError):
    code = "InvalidID"


class InvalidInstanceIDMalformed(ClientError):
    code = "InvalidInstanceID.Malformed"


class InvalidInstanceIDNotFound(ClientError):
    code = "InvalidInstanceID.NotFound"


class InvalidInstanceType(ClientError):
    code = "InvalidInstanceType"


class InvalidKeyPairDuplicate(ClientError):
    code = "InvalidKeyPair.Duplicate"


class InvalidKeyPairFormat(ClientError):
    code = "InvalidKeyPair.Format"


class InvalidKeyPairNotFound(ClientError):
    code = "InvalidKeyPair.NotFound"


class InvalidLaunchTemplateIdMalformed(ClientError):
    code = "InvalidLaunchTemplateId.Malformed"


class InvalidLaunchTemplateIdNotFound(ClientError):
    code = "InvalidLaunchTemplateId.NotFound"


class InvalidLaunchTemplateIdVersionNotFound(ClientError):
    code = "InvalidLaunchTemplateId.VersionNotFound"


class InvalidLaunchTemplateNameAlreadyExists(ClientError):
    code = "InvalidLaunchTemplateName.AlreadyExistsException"


class InvalidLaunchTemplateNameMalformed(ClientError):
    code = "InvalidLaunchTemplateName.MalformedException"


class InvalidLaunchTemplateNameNotFound(ClientError):
    code = "InvalidLaunchTemplateName.NotFoundException"


class VersionLimitExceeded(ClientError):
    code = "VersionLimitExceeded"


class InvalidManifest(ClientError):
    code = "InvalidManifest"


class InvalidPaginationToken(ClientError):
    code = "InvalidPaginationToken"


class InvalidRequest(ClientError):
    code = "InvalidRequest"


class InvalidSnapshotInUse(ClientError):
    code = "InvalidSnapshot.InUse"


class InvalidSnapshotNotFound(ClientError):
    code = "InvalidSnapshot.NotFound"


class InvalidUserIDMalformed(ClientError):
    code = "InvalidUserID.Malformed"


class InvalidVolumeNotFound(ClientError):
    code = "InvalidVolume.NotFound"


class InvalidVolumeZoneMismatch(ClientError):
    code = "InvalidVolume.ZoneMismatch"


class OperationNotPermitted(ClientError):
    code = "OperationNotPermitted"


class TagLimitExceeded(ClientError):
    code = "TagLimitExceeded"


class UnauthorizedOperation(AwsError):
    code = "UnauthorizedOperation"
    status = 403


class Unsupported(ClientError):
    code = "Unsupported"


class UnsupportedOperation(ClientError):
    code = "UnsupportedOperation"


class VolumeInUse(ClientError):
    code = "VolumeInUse"


class VolumeLimitExceeded(ClientError):
    code = "VolumeLimitExceeded"


class CannotDelete(ClientError):
    code = "CannotDelete"


class InvalidGroupDuplicate(ClientError):
    code = "InvalidGroup.Duplicate"


class InvalidGroupIdMalformed(ClientError):
    code = "InvalidGroupId.Malformed"


class InvalidGroupInUse(ClientError):
    code = "InvalidGroup.InUse"


class InvalidGroupReserved(ClientError):
    code = "InvalidGroup.Reserved"


class InvalidVpcIDNotFound(ClientError):
    code = "InvalidVpcID.NotFound"


class SecurityGroupLimitExceeded(ClientError):
    code = "SecurityGroupLimitExceeded"


class SecurityGroupsPerInstanceLimitExceeded(ClientError):
    code = "SecurityGroupsPerInstanceLimitExceeded"


class InvalidPermissionDuplicate(ClientError):
    code = "InvalidPermission.Duplicate"


class InvalidPermissionMalformed(ClientError):
    code = "InvalidPermission.Malformed"


class InvalidPermissionNotFound(ClientError):
    code = "InvalidPermission.NotFound"


class InvalidSecurityGroupRuleIdMalformed(ClientError):
    code = "InvalidSecurityGroupRuleId.Malformed"


class InvalidSecurityGroupRuleIdNotFound(ClientError):
    code = "InvalidSecurityGroupRuleId.NotFound"


class RulesPerSecurityGroupLimitExceeded(ClientError):
    code = "RulesPerSecurityGroupLimitExceeded"


class AddressLimitExceeded(ClientError):
    code = "AddressLimitExceeded"


class InsufficientAddressCapacity(AwsError):
    code = "InsufficientAddressCapacity"
    status = 500


class InvalidAddressNotFound(ClientError):
    code = "InvalidAddress.NotFound"


class InvalidAssociationIDNotFound(ClientError):
    code = "InvalidAssociationID.NotFound"


class InvalidIPAddressInUse(ClientError):
    code = "InvalidIPAddress.InUse"


class ResourceAlreadyAssociated(ClientError):
    code = "Resource.AlreadyAssociated"


class InvalidInstanceAttributeValue(ClientError):
    code = "InvalidInstanceAttributeValue"


# Quotas (eucalite.quotas): AWS's limit codes for a request past its account's or user's quota.
class InstanceLimitExceeded(ClientError):
    code = "InstanceLimitExceeded"


class VcpuLimitExceeded(ClientError):
    code = "VcpuLimitExceeded"


class SnapshotLimitExceeded(ClientError):
    code = "SnapshotLimitExceeded"


class ResourceLimitExceeded(ClientError):
    code = "ResourceLimitExceeded"
