"""The sandbox's objects and fields, and their describe results in Salesforce's shape.

Field order follows Salesforce's: ``Id`` first, standard fields, audit fields, then custom fields.
Compound address fields (type ``address``) are listed after their components, which name them in
``compoundFieldName``; formula fields have ``calculated: true`` and a ``calculatedFormula``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

API_VERSIONS = ["58.0", "59.0", "60.0", "61.0", "62.0"]
STRING_TYPES = {"id", "reference", "string", "picklist", "multipicklist", "textarea", "phone", "url", "email"}
_SOAP = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "address": "urn:address",
}


@dataclass(frozen=True)
class FieldDef:
    """One field of a sandbox object, as describe reports it."""

    name: str
    type: str
    label: str = ""
    length: int = 0
    precision: int = 0
    scale: int = 0
    nillable: bool = True
    formula: str | None = None
    compound: str | None = None
    reference_to: tuple[str, ...] = ()
    picklist: tuple[str, ...] = ()
    system: bool = False
    external_id: bool = False
    """An external id (``externalId: true``, indexed, usable as ``externalIdFieldName`` of upserts)."""
    unique: bool = False
    """Values must be unique across the object's records (``DUPLICATE_VALUE`` otherwise)."""
    restricted: bool = False
    """A restricted picklist: values outside ``picklist`` are refused (``INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST``)."""
    help_text: str | None = None

    @property
    def calculated(self) -> bool:
        """A formula field (read-only, computed)."""
        return self.formula is not None

    @property
    def is_compound(self) -> bool:
        """Compound fields (address) are not columns of their own; the Bulk API refuses them."""
        return self.type == "address"

    @property
    def arrow_type(self) -> pa.DataType:
        """The Arrow type the sandbox keeps this field's values in."""
        if self.type in STRING_TYPES:
            return pa.string()
        return {
            "boolean": pa.bool_(),
            "int": pa.int64(),
            "date": pa.date32(),
            "datetime": pa.timestamp("ms", tz="UTC"),
        }.get(self.type, pa.float64())

    @property
    def writable(self) -> bool:
        """Createable and updateable (not a system, formula, compound or id field)."""
        return not (self.system or self.calculated or self.is_compound or self.type == "id")

    def describe(self) -> dict[str, Any]:
        """The field's entry in ``/sobjects/{object}/describe``: every key of a real org's field describe.

        The 57 keys of ``DescribeFieldResult`` (SOAP API Developer Guide, "describeSObjectResult" →
        "Field"; the same in REST describe), e.g. https://developer.salesforce.com/docs/atlas.en-us.api.meta/
        api/sforce_api_calls_describesobjects_describesobjectresult.htm#field — in alphabetical order as
        REST answers them.
        """
        custom = self.name.endswith("__c")
        writable = self.writable
        string_like = self.type in STRING_TYPES
        numeric = self.type in ("double", "currency", "percent")
        return {
            "aggregatable": self.type not in ("textarea", "address", "multipicklist"),
            "aiPredictionField": False,
            "autoNumber": False,
            "byteLength": self.length * 3 if string_like else 0,
            "calculated": self.calculated,
            "calculatedFormula": self.formula,
            "cascadeDelete": False,
            "caseSensitive": False,
            "compoundFieldName": self.compound,
            "controllerName": None,
            "createable": writable,
            "custom": custom,
            "defaultValue": False if self.type == "boolean" else None,
            "defaultValueFormula": None,
            "defaultedOnCreate": self.type == "boolean" or self.system or self.name == "OwnerId",
            "dependentPicklist": False,
            "deprecatedAndHidden": False,
            "digits": self.precision if self.type == "int" else 0,
            "displayLocationInDecimal": False,
            "encrypted": False,
            "externalId": self.external_id,
            "extraTypeInfo": _EXTRA_TYPE.get(self.type),
            "filterable": not self.is_compound and self.type != "textarea",
            "filteredLookupInfo": None,
            "formulaTreatNullNumberAsZero": False,
            "groupable": self.type not in ("textarea", "address", "double", "currency", "percent", "datetime"),
            "highScaleNumber": False,
            "htmlFormatted": False,
            "idLookup": self.type == "id" or self.external_id,
            "inlineHelpText": self.help_text,
            "label": self.label or _label(self.name),
            "length": self.length if string_like else 0,
            "mask": None,
            "maskType": None,
            "name": self.name,
            "nameField": self.name == "Name",
            "namePointing": False,
            "nillable": self.nillable,
            "permissionable": custom and self.nillable and not self.calculated,
            "picklistValues": [
                {"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v} for v in self.picklist
            ],
            "polymorphicForeignKey": False,
            "precision": self.precision if numeric else 0,
            "queryByDistance": False,
            "referenceTargetField": None,
            "referenceTo": list(self.reference_to),
            "relationshipName": _relationship(self.name) if self.type == "reference" else None,
            "relationshipOrder": None,
            "restrictedDelete": False,
            "restrictedPicklist": self.restricted,
            "scale": self.scale if numeric else 0,
            "searchPrefilterable": self.type == "reference",
            "soapType": _SOAP.get(self.type, "xsd:string"),
            "sortable": self.type not in ("textarea", "address", "multipicklist"),
            "type": self.type,
            "unique": self.unique,
            "updateable": writable,
            "writeRequiresMasterRead": False,
        }


_EXTRA_TYPE = {"textarea": "plaintextarea", "address": None}


def _label(name: str) -> str:
    base = name.removesuffix("__c").replace("_", " ")
    return "".join(" " + c if c.isupper() and i and base[i - 1].islower() else c for i, c in enumerate(base))


def _relationship(name: str) -> str:
    if name.endswith("__c"):
        return name[:-1] + "r"
    return name.removesuffix("Id")


@dataclass(frozen=True)
class ObjectDef:
    """A sandbox sObject: name, key prefix and fields in describe order."""

    name: str
    prefix: str
    label: str
    plural: str
    fields: tuple[FieldDef, ...]
    by_name: dict[str, FieldDef] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self.by_name.update({f.name.lower(): f for f in self.fields})

    def field(self, name: str) -> FieldDef | None:
        """The field called ``name`` (case-insensitive), or None."""
        return self.by_name.get(name.lower())

    @property
    def columns(self) -> list[FieldDef]:
        """Fields held as columns (every field but compound ones)."""
        return [f for f in self.fields if not f.is_compound]

    @property
    def arrow_schema(self) -> pa.Schema:
        """Arrow schema of the stored columns."""
        return pa.schema([pa.field(f.name, f.arrow_type) for f in self.columns])

    def components(self, compound: str) -> list[FieldDef]:
        """The component fields of a compound field."""
        return [f for f in self.fields if f.compound == compound and f.type != "address"]

    def describe(self, base: str) -> dict[str, Any]:
        """The object's ``/describe`` document; ``base`` is ``/services/data/vXX.X``."""
        doc = self.summary(base)
        doc.update(
            {
                "fields": [f.describe() for f in self.fields],
                "childRelationships": [],
                "recordTypeInfos": [],
                "supportedScopes": [{"label": "All " + self.plural.lower(), "name": "everything"}],
                "namedLayoutInfos": [],
                "actionOverrides": [],
            }
        )
        return doc

    def summary(self, base: str) -> dict[str, Any]:
        """The object's entry in the global describe (``/sobjects``)."""
        url = f"{base}/sobjects/{self.name}"
        return {
            "activateable": False,
            "createable": True,
            "custom": self.name.endswith("__c"),
            "customSetting": False,
            "deletable": True,
            "deprecatedAndHidden": False,
            "feedEnabled": False,
            "keyPrefix": self.prefix,
            "label": self.label,
            "labelPlural": self.plural,
            "layoutable": True,
            "mergeable": self.name in ("Account", "Contact", "Lead"),
            "name": self.name,
            "queryable": True,
            "replicateable": True,
            "retrieveable": True,
            "searchable": True,
            "triggerable": True,
            "undeletable": True,
            "updateable": True,
            "urls": {
                "sobject": url,
                "describe": url + "/describe",
                "rowTemplate": url + "/{ID}",
            },
        }


def _address(prefix: str, label: str, compound: str) -> list[FieldDef]:
    return [
        FieldDef(prefix + "Street", "textarea", f"{label} Street", length=255, compound=compound),
        FieldDef(prefix + "City", "string", f"{label} City", length=40, compound=compound),
        FieldDef(prefix + "State", "string", f"{label} State/Province", length=80, compound=compound),
        FieldDef(prefix + "PostalCode", "string", f"{label} Zip/Postal Code", length=20, compound=compound),
        FieldDef(prefix + "Country", "string", f"{label} Country", length=80, compound=compound),
        FieldDef(prefix + "Latitude", "double", f"{label} Latitude", precision=18, scale=15, compound=compound),
        FieldDef(prefix + "Longitude", "double", f"{label} Longitude", precision=18, scale=15, compound=compound),
        FieldDef(compound, "address", f"{label} Address"),
    ]


def _stamps() -> list[FieldDef]:
    """The created/modified system fields every object has, in Salesforce's describe order."""
    return [
        FieldDef("CreatedDate", "datetime", nillable=False, system=True),
        FieldDef(
            "CreatedById", "reference", "Created By ID", length=18, nillable=False, reference_to=("User",), system=True
        ),
        FieldDef("LastModifiedDate", "datetime", nillable=False, system=True),
        FieldDef(
            "LastModifiedById",
            "reference",
            "Last Modified By ID",
            length=18,
            nillable=False,
            reference_to=("User",),
            system=True,
        ),
        FieldDef("SystemModstamp", "datetime", "System Modstamp", nillable=False, system=True),
    ]


def _audit() -> list[FieldDef]:
    return [
        FieldDef("OwnerId", "reference", "Owner ID", length=18, nillable=False, reference_to=("User",)),
        *_stamps(),
    ]


def _head(name_length: int = 255) -> list[FieldDef]:
    return [
        FieldDef("Id", "id", "Record ID", length=18, nillable=False, system=True),
        FieldDef("IsDeleted", "boolean", "Deleted", nillable=False, system=True),
    ]


INDUSTRIES = ("Agriculture", "Banking", "Chemicals", "Energy", "Healthcare", "Manufacturing", "Retail", "Technology")
ACCOUNT_TYPES = ("Prospect", "Customer - Direct", "Customer - Channel", "Channel Partner / Reseller", "Other")
RATINGS = ("Hot", "Warm", "Cold")
REGIONS = ("EMEA", "AMER", "APAC", "LATAM")
STAGES = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
)
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
LEAD_STATUS = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted")
INVOICE_STATUS = ("Draft", "Sent", "Paid", "Overdue", "Cancelled")
SALUTATIONS = ("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.")
LANGUAGES = ("English", "German", "French", "Spanish", "Japanese", "Portuguese")

ACCOUNT = ObjectDef(
    "Account",
    "001",
    "Account",
    "Accounts",
    (
        *_head(),
        FieldDef("MasterRecordId", "reference", "Master Record ID", length=18, reference_to=("Account",)),
        FieldDef("Name", "string", "Account Name", length=255, nillable=False),
        FieldDef("Type", "picklist", "Account Type", length=255, picklist=ACCOUNT_TYPES),
        FieldDef("ParentId", "reference", "Parent Account ID", length=18, reference_to=("Account",)),
        *_address("Billing", "Billing", "BillingAddress"),
        FieldDef("Phone", "phone", "Account Phone", length=40),
        FieldDef("Website", "url", length=255),
        FieldDef("Industry", "picklist", length=255, picklist=INDUSTRIES),
        FieldDef("AnnualRevenue", "currency", "Annual Revenue", precision=18, scale=0),
        FieldDef("NumberOfEmployees", "int", "Employees", precision=8),
        FieldDef("Rating", "picklist", "Account Rating", length=255, picklist=RATINGS, restricted=True),
        FieldDef("Description", "textarea", "Account Description", length=32000),
        *_audit(),
        FieldDef("LastActivityDate", "date", "Last Activity", system=True),
        FieldDef("Region__c", "multipicklist", "Region", length=4099, picklist=REGIONS),
        FieldDef("Credit_Limit__c", "currency", "Credit Limit", precision=16, scale=2),
        FieldDef("Discount__c", "percent", "Discount", precision=5, scale=2),
        FieldDef("Active__c", "boolean", "Active", nillable=False),
        FieldDef(
            "Acme_Id__c",
            "string",
            "ACME Id",
            length=40,
            external_id=True,
            unique=True,
            help_text="The account's id in ACME's ERP (upsert key of the write-back).",
        ),
        FieldDef("customExtIdField__c", "string", "customExtIdField", length=255, external_id=True),
        FieldDef(
            "Revenue_Per_Employee__c",
            "currency",
            "Revenue per Employee",
            precision=18,
            scale=2,
            formula="AnnualRevenue / NumberOfEmployees",
        ),
    ),
)

CONTACT = ObjectDef(
    "Contact",
    "003",
    "Contact",
    "Contacts",
    (
        *_head(),
        FieldDef("MasterRecordId", "reference", "Master Record ID", length=18, reference_to=("Contact",)),
        FieldDef("AccountId", "reference", "Account ID", length=18, reference_to=("Account",)),
        FieldDef("LastName", "string", "Last Name", length=80, nillable=False, compound="Name"),
        FieldDef("FirstName", "string", "First Name", length=40, compound="Name"),
        FieldDef("Salutation", "picklist", length=255, picklist=SALUTATIONS, compound="Name"),
        FieldDef("Name", "string", "Full Name", length=121, nillable=False, system=True),
        *_address("Mailing", "Mailing", "MailingAddress"),
        FieldDef("Phone", "phone", "Business Phone", length=40),
        FieldDef("Email", "email", length=80),
        FieldDef("Title", "string", length=128),
        FieldDef("Birthdate", "date"),
        FieldDef("LeadSource", "picklist", "Lead Source", length=255, picklist=LEAD_SOURCES),
        FieldDef("HasOptedOutOfEmail", "boolean", "Email Opt Out", nillable=False),
        FieldDef("Description", "textarea", "Contact Description", length=32000),
        *_audit(),
        FieldDef("Languages__c", "multipicklist", "Languages", length=4099, picklist=LANGUAGES),
        FieldDef("Acme_Contact_Id__c", "string", "ACME Contact Id", length=40, external_id=True, unique=True),
    ),
)

OPPORTUNITY = ObjectDef(
    "Opportunity",
    "006",
    "Opportunity",
    "Opportunities",
    (
        *_head(),
        FieldDef("AccountId", "reference", "Account ID", length=18, reference_to=("Account",)),
        FieldDef("Name", "string", length=120, nillable=False),
        FieldDef("Description", "textarea", length=32000),
        FieldDef("StageName", "picklist", "Stage", length=255, nillable=False, picklist=STAGES),
        FieldDef("Amount", "currency", precision=18, scale=2),
        FieldDef("Probability", "percent", "Probability (%)", precision=3, scale=0),
        FieldDef(
            "ExpectedRevenue",
            "currency",
            "Expected Amount",
            precision=18,
            scale=2,
            formula="Amount * Probability / 100",
        ),
        FieldDef("CloseDate", "date", "Close Date", nillable=False),
        FieldDef("LeadSource", "picklist", "Lead Source", length=255, picklist=LEAD_SOURCES),
        FieldDef("IsClosed", "boolean", "Closed", nillable=False, system=True),
        FieldDef("IsWon", "boolean", "Won", nillable=False, system=True),
        *_audit(),
        FieldDef("Discount_Rate__c", "percent", "Discount Rate", precision=5, scale=2),
    ),
)

LEAD = ObjectDef(
    "Lead",
    "00Q",
    "Lead",
    "Leads",
    (
        *_head(),
        FieldDef("LastName", "string", "Last Name", length=80, nillable=False, compound="Name"),
        FieldDef("FirstName", "string", "First Name", length=40, compound="Name"),
        FieldDef("Name", "string", "Full Name", length=121, nillable=False, system=True),
        FieldDef("Company", "string", length=255, nillable=False),
        *_address("", "", "Address"),
        FieldDef("Phone", "phone", length=40),
        FieldDef("Email", "email", length=80),
        FieldDef("Status", "picklist", "Lead Status", length=255, nillable=False, picklist=LEAD_STATUS),
        FieldDef("Industry", "picklist", length=255, picklist=INDUSTRIES),
        FieldDef("AnnualRevenue", "currency", "Annual Revenue", precision=18, scale=0),
        FieldDef("NumberOfEmployees", "int", "Employees", precision=8),
        FieldDef("IsConverted", "boolean", "Converted", nillable=False),
        *_audit(),
        FieldDef("Interests__c", "multipicklist", "Interests", length=4099, picklist=INDUSTRIES),
    ),
)

INVOICE = ObjectDef(
    "Invoice__c",
    "a0B",
    "Invoice",
    "Invoices",
    (
        FieldDef("Id", "id", "Record ID", length=18, nillable=False, system=True),
        FieldDef("OwnerId", "reference", "Owner ID", length=18, nillable=False, reference_to=("User",)),
        FieldDef("IsDeleted", "boolean", "Deleted", nillable=False, system=True),
        FieldDef("Name", "string", "Invoice Number", length=80, nillable=False),
        *_stamps(),
        FieldDef("Account__c", "reference", "Account", length=18, reference_to=("Account",)),
        FieldDef("Opportunity__c", "reference", "Opportunity", length=18, reference_to=("Opportunity",)),
        FieldDef("Status__c", "picklist", "Status", length=255, picklist=INVOICE_STATUS, restricted=True),
        FieldDef("Amount__c", "currency", "Amount", precision=16, scale=2),
        FieldDef("Tax_Rate__c", "percent", "Tax Rate", precision=5, scale=3),
        FieldDef("Tax__c", "currency", "Tax", precision=18, scale=2, formula="Amount__c * Tax_Rate__c / 100"),
        FieldDef("Lines__c", "double", "Lines", precision=18, scale=0),
        FieldDef("Issued_On__c", "date", "Issued On"),
        FieldDef("Due_On__c", "date", "Due On"),
        FieldDef("Paid__c", "boolean", "Paid", nillable=False),
        FieldDef("Notes__c", "textarea", "Notes", length=131072),
    ),
)

OBJECTS: dict[str, ObjectDef] = {o.name.lower(): o for o in (ACCOUNT, CONTACT, OPPORTUNITY, LEAD, INVOICE)}


def find_object(name: str) -> ObjectDef | None:
    """The object called ``name`` (case-insensitive), or None."""
    return OBJECTS.get(name.lower())
