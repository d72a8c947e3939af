      * ALLTYPES - ONE FIELD OF EVERY USAGE, SIGN FORM AND EDITED PICTURE
      * BULKSYNC READS IT; TESTS/COBOL/ALLTYPES.CBL WRITES IT (GNUCOBOL).
       01  ALL-REC.
           05  A-ID                PIC 9(6).
           05  A-TEXT              PIC X(12).
           05  A-ZONED             PIC S9(7)V99.
           05  A-ZONED-L           PIC S9(5) SIGN LEADING.
           05  A-SEP-T             PIC S9(5)V9 SIGN TRAILING SEPARATE.
           05  A-SEP-L             PIC S9(4)
                                   SIGN IS LEADING SEPARATE CHARACTER.
           05  A-UNSIGNED          PIC 9(4)V99.
           05  A-PACKED            PIC S9(11)V99 COMP-3.
           05  A-PACKED-U          PIC 9(5) PACKED-DECIMAL.
           05  A-PACKED-E          PIC S9(4) COMP-3.
           05  A-BIN-H             PIC S9(4) COMP.
           05  A-BIN-F             PIC S9(9) BINARY.
           05  A-BIN-D             PIC S9(18) COMP.
           05  A-BIN-U             PIC 9(18) COMP-4.
           05  A-BIN-V             PIC S9(5)V99 COMP.
           05  A-COMP5             PIC S9(9) COMP-5.
           05  A-FLOAT             COMP-1.
           05  A-DOUBLE            COMP-2.
           05  A-ED-PLUS           PIC +9(8).
           05  A-ED-ZMINUS         PIC Z(8)-.
           05  A-ED-POINT          PIC 9(6).99-.
           05  A-ED-EXPLICIT       PIC 9(8).9(2).
           05  A-ED-COMMA          PIC -Z,ZZZ,ZZ9.99.
           05  A-ED-STAR           PIC $**,**9.99CR.
           05  A-ED-DB             PIC ZZZ9.99DB.
           05  A-ED-FLOAT          PIC ++++9.99.
           05  A-ED-BLANK          PIC ZZZ9 BLANK WHEN ZERO.
           05  A-ED-SLASH          PIC 99/99/99.
