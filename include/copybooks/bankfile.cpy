      * BANKFILE - MULTI-SEGMENT FILE: ONE HEADER (H), DETAILS (D), ONE
      * TRAILER (T) PER FILE, FIXED 80-BYTE RECORDS.
       01  BANK-HEADER.
           05  BH-REC-TYPE             PIC X.
           05  BH-BANK-ID              PIC X(8).
           05  BH-RUN-DATE             PIC 9(8).
           05  FILLER                  PIC X(63).
       01  BANK-DETAIL.
           05  BD-REC-TYPE             PIC X.
           05  BD-ACCOUNT              PIC 9(12).
           05  BD-AMOUNT               PIC S9(13)V99.
           05  BD-CURRENCY             PIC X(3).
           05  BD-TEXT                 PIC X(40).
           05  BD-FX-RATE              COMP-1.
           05  FILLER                  PIC X(5).
       01  BANK-TRAILER.
           05  BT-REC-TYPE             PIC X.
           05  BT-COUNT                PIC 9(9).
           05  BT-TOTAL                PIC S9(15)V99 COMP-3.
           05  FILLER                  PIC X(61).
