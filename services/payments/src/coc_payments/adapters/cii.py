"""The UN/CEFACT Cross Industry Invoice (CII D16B) of an invoice or a credit note, Factur-X
profile EN 16931: one line (the certificate), one VAT breakdown (20 % standard, or reverse charge
« AE » with both VAT numbers), the payment already made (prepaid = total, nothing due).
Built with lxml from the document's data; ``facturx.xml_check_xsd`` validates it (tests)."""

from __future__ import annotations

from lxml import etree

from ..domain.billing import CREDIT_NOTE, REVERSE_CHARGE, decimal_amount

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
NSMAP = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}
EN16931 = "urn:cen.eu:en16931:2017"
# UNTDID 4461 payment means: 48 bank card, 68 online payment service, 58 SEPA credit transfer
PAYMENT_MEANS = {"card": "48", "paypal": "68", "transfer": "58"}


def _el(parent, tag: str, text: str | None = None, **attrs):
    ns, name = tag.split(":")
    element = etree.SubElement(parent, f"{{{NSMAP[ns]}}}{name}", attrs)
    if text is not None:
        element.text = text
    return element


def _date(parent, tag: str, iso: str) -> None:
    holder = _el(parent, tag)
    _el(holder, "udt:DateTimeString", iso[:10].replace("-", ""), format="102")


def _party(parent, tag: str, name: str, siren, address: dict, vat_number) -> None:
    party = _el(parent, tag)
    _el(party, "ram:Name", name)
    if siren:
        legal = _el(party, "ram:SpecifiedLegalOrganization")
        _el(legal, "ram:ID", siren, schemeID="0002")
    postal = _el(party, "ram:PostalTradeAddress")
    if address.get("postal_code"):
        _el(postal, "ram:PostcodeCode", address["postal_code"])
    _el(postal, "ram:LineOne", address.get("line1", ""))
    if address.get("line2"):
        _el(postal, "ram:LineTwo", address["line2"])
    _el(postal, "ram:CityName", address.get("city", ""))
    _el(postal, "ram:CountryID", address.get("country", "FR"))
    if vat_number:
        registration = _el(party, "ram:SpecifiedTaxRegistration")
        _el(registration, "ram:ID", vat_number, schemeID="VA")


def _tax(parent, amounts: dict, calculated: bool) -> None:
    tax = _el(parent, "ram:ApplicableTradeTax")
    reverse = amounts["vat_regime"] == REVERSE_CHARGE
    if calculated:
        _el(tax, "ram:CalculatedAmount", decimal_amount(amounts["vat_cents"]))
    _el(tax, "ram:TypeCode", "VAT")
    if calculated and reverse:
        _el(tax, "ram:ExemptionReason", "Autoliquidation")
    if calculated:
        _el(tax, "ram:BasisAmount", decimal_amount(amounts["net_cents"]))
    _el(tax, "ram:CategoryCode", amounts["vat_category"])
    if calculated and reverse:
        _el(tax, "ram:ExemptionReasonCode", "VATEX-EU-AE")
    _el(tax, "ram:RateApplicablePercent", amounts["vat_rate"])


def cii_xml(data: dict) -> bytes:
    amounts, seller, buyer = data["amounts"], data["seller"], data["buyer"]
    currency = amounts["currency"]
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap=NSMAP)
    context = _el(root, "rsm:ExchangedDocumentContext")
    guideline = _el(context, "ram:GuidelineSpecifiedDocumentContextParameter")
    _el(guideline, "ram:ID", EN16931)

    document = _el(root, "rsm:ExchangedDocument")
    _el(document, "ram:ID", data["number"])
    _el(document, "ram:TypeCode", "381" if data["kind"] == CREDIT_NOTE else "380")
    _date(document, "ram:IssueDateTime", data["issue_date"])
    if buyer.get("business"):
        note = _el(document, "ram:IncludedNote")
        _el(
            note,
            "ram:Content",
            "Pénalités de retard : trois fois le taux d'intérêt légal. Indemnité forfaitaire "
            "pour frais de recouvrement : 40 EUR.",
        )
        _el(note, "ram:SubjectCode", "PMT")
    if seller.get("legal_mentions"):
        note = _el(document, "ram:IncludedNote")
        _el(note, "ram:Content", seller["legal_mentions"])
        _el(note, "ram:SubjectCode", "REG")

    transaction = _el(root, "rsm:SupplyChainTradeTransaction")
    item = _el(transaction, "ram:IncludedSupplyChainTradeLineItem")
    line_doc = _el(item, "ram:AssociatedDocumentLineDocument")
    _el(line_doc, "ram:LineID", "1")
    product = _el(item, "ram:SpecifiedTradeProduct")
    _el(product, "ram:Name", data["line"]["description"])
    line_agreement = _el(item, "ram:SpecifiedLineTradeAgreement")
    price = _el(line_agreement, "ram:NetPriceProductTradePrice")
    _el(price, "ram:ChargeAmount", decimal_amount(amounts["net_cents"]))
    line_delivery = _el(item, "ram:SpecifiedLineTradeDelivery")
    _el(line_delivery, "ram:BilledQuantity", "1", unitCode="C62")
    line_settlement = _el(item, "ram:SpecifiedLineTradeSettlement")
    _tax(line_settlement, amounts, calculated=False)
    line_sum = _el(line_settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
    _el(line_sum, "ram:LineTotalAmount", decimal_amount(amounts["net_cents"]))

    agreement = _el(transaction, "ram:ApplicableHeaderTradeAgreement")
    _el(agreement, "ram:BuyerReference", data["order_number"])
    _party(
        agreement,
        "ram:SellerTradeParty",
        seller["name"],
        seller["siren"],
        seller["address"],
        seller["vat_number"],
    )
    _party(
        agreement,
        "ram:BuyerTradeParty",
        buyer.get("company_name") or buyer["name"],
        buyer.get("siren")
        if buyer.get("siren") and buyer["address"].get("country") == "FR"
        else None,
        buyer["address"],
        buyer.get("vat_number"),
    )
    order = _el(agreement, "ram:BuyerOrderReferencedDocument")
    _el(order, "ram:IssuerAssignedID", data["order_number"])

    delivery = _el(transaction, "ram:ApplicableHeaderTradeDelivery")
    event = _el(delivery, "ram:ActualDeliverySupplyChainEvent")
    _date(event, "ram:OccurrenceDateTime", data["sale_date"])

    settlement = _el(transaction, "ram:ApplicableHeaderTradeSettlement")
    _el(settlement, "ram:PaymentReference", data["order_number"])
    _el(settlement, "ram:InvoiceCurrencyCode", currency)
    payment = data["payment"]
    means = _el(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
    code = PAYMENT_MEANS.get(payment["method"], "1")
    iban = seller.get("iban") if code == "58" else None
    if code == "58" and not iban:
        code = "1"  # a SEPA credit transfer names the account paid (BR-61)
    _el(means, "ram:TypeCode", code)
    _el(means, "ram:Information", f"{payment['method']} {payment['provider']}")
    if iban:
        account = _el(means, "ram:PayeePartyCreditorFinancialAccount")
        _el(account, "ram:IBANID", iban)
    _tax(settlement, amounts, calculated=True)
    terms = _el(settlement, "ram:SpecifiedTradePaymentTerms")
    _el(terms, "ram:Description", f"Payée le {payment['paid_at'][:10]}")
    summation = _el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(summation, "ram:LineTotalAmount", decimal_amount(amounts["net_cents"]))
    _el(summation, "ram:TaxBasisTotalAmount", decimal_amount(amounts["net_cents"]))
    _el(summation, "ram:TaxTotalAmount", decimal_amount(amounts["vat_cents"]), currencyID=currency)
    _el(summation, "ram:GrandTotalAmount", decimal_amount(amounts["total_cents"]))
    _el(summation, "ram:TotalPrepaidAmount", decimal_amount(amounts["total_cents"]))
    _el(summation, "ram:DuePayableAmount", "0.00")
    if data["kind"] == CREDIT_NOTE:
        referenced = _el(settlement, "ram:InvoiceReferencedDocument")
        _el(referenced, "ram:IssuerAssignedID", data["corrects"]["number"])
        issued = _el(referenced, "ram:FormattedIssueDateTime")
        _el(
            issued,
            "qdt:DateTimeString",
            data["corrects"]["issue_date"].replace("-", ""),
            format="102",
        )
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def summary(xml: bytes) -> dict:
    """The main figures of a CII XML (tests, support): number, type, parties, amounts."""
    root = etree.fromstring(xml)

    def text(path: str) -> str | None:
        found = root.xpath(path, namespaces=NSMAP)
        return found[0].text if found else None

    return {
        "number": text("//rsm:ExchangedDocument/ram:ID"),
        "type_code": text("//rsm:ExchangedDocument/ram:TypeCode"),
        "issue_date": text("//rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString"),
        "seller": text("//ram:SellerTradeParty/ram:Name"),
        "seller_vat": text("//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID"),
        "buyer": text("//ram:BuyerTradeParty/ram:Name"),
        "buyer_vat": text("//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID"),
        "vat_category": text(
            "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode"
        ),
        "vat_rate": text(
            "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:RateApplicablePercent"
        ),
        "exemption": text(
            "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:ExemptionReason"
        ),
        "net": text(
            "//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:TaxBasisTotalAmount"
        ),
        "vat": text("//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:TaxTotalAmount"),
        "total": text("//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:GrandTotalAmount"),
        "currency": text("//ram:InvoiceCurrencyCode"),
    }
