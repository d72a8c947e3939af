      * ORDERS - ORDER FILE, VARIABLE RECORDS WITH RDW (RECFM=VB).
      * ORD-PAYMENT IS REDEFINED BY PAYMENT TYPE (C = CARD, I = INVOICE).
      * THE ITEM TABLE HOLDS ORD-ITEM-COUNT ENTRIES (1 TO 20).
       01  ORDER-RECORD.
           05  ORD-NO                  PIC 9(10).
           05  ORD-CUST-ID             PIC 9(8).
           05  ORD-DATE                PIC 9(8).
           05  ORD-STATUS              PIC X(2).
           05  ORD-TOTAL               PIC S9(11)V99 COMP-3.
           05  ORD-TAX                 PIC S9(9)V99 USAGE IS PACKED-DE
      -        CIMAL.
           05  ORD-WEIGHT-KG           PIC 9(5)V9(3) COMP.
           05  ORD-EXCH-RATE           COMP-2.
           05  ORD-PAY-TYPE            PIC X.
           05  ORD-PAYMENT.
               10  ORD-PAY-REF         PIC X(20).
           05  ORD-CARD REDEFINES ORD-PAYMENT.
               10  ORD-CARD-LAST4      PIC 9(4).
               10  ORD-CARD-EXPIRY     PIC 9(4).
               10  ORD-CARD-AUTH       PIC X(12).
           05  ORD-INVOICE REDEFINES ORD-PAYMENT.
               10  ORD-INV-NO          PIC X(10).
               10  ORD-INV-DUE-DAYS    PIC S9(3) COMP-3.
               10  FILLER              PIC X(8).
           05  ORD-AMOUNT-EDITED       PIC -Z,ZZZ,ZZ9.99.
           05  ORD-ITEM-COUNT          PIC S9(4) COMP.
           05  ORD-ITEMS OCCURS 1 TO 20 TIMES
                   DEPENDING ON ORD-ITEM-COUNT.
               10  ORD-SKU             PIC X(12).
               10  ORD-QTY             PIC S9(5) COMP-3.
               10  ORD-PRICE           PIC S9(7)V99 COMP-3.
               10  ORD-DISC            PIC SV99.
