      * PAY - A PAYMENT FILE: HEADER, DETAILS, TRAILER (VARIABLE RECORDS).
      * A DETAIL IS A BANK TRANSFER (D-KIND B, D-BODY) OR A CARD PAYMENT
      * (D-KIND C, D-CARD REDEFINES D-BODY, WRITTEN SHORT: 17 BYTES).
       01  PAY-HEADER.
           05  H-TYPE              PIC X.
           05  H-DATE              PIC 9(8).
           05  H-SOURCE            PIC X(8).
       01  PAY-DETAIL.
           05  D-TYPE              PIC X.
           05  D-ID                PIC 9(6).
           05  D-KIND              PIC X.
           05  D-BODY.
               10  D-IBAN          PIC X(22).
               10  D-AMOUNT        PIC S9(9)V99 COMP-3.
           05  D-CARD REDEFINES D-BODY.
               10  D-CARD-NO       PIC 9(4).
               10  D-CARD-AMT      PIC S9(7)V99 COMP-3.
       01  PAY-TRAILER.
           05  T-TYPE              PIC X.
           05  T-COUNT             PIC 9(6).
           05  T-TOTAL             PIC S9(11)V99 COMP-3.
