      * WRITES ONE ALLTYPES RECORD (ALLTYPES.CPY) PER INPUT LINE.
      * INPUT (LINE SEQUENTIAL, WRITTEN BY THE TEST): ID, TEXT, 24
      * NUMBERS S9(14)V9(4) AND 2 NUMBERS S9(18), SIGN LEADING SEPARATE.
      * EACH NUMBER IS MOVED TO ITS FIELD: THE COMPILER ENCODES IT.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. ALLTYPES.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT IN-FILE ASSIGN TO INFILE
               ORGANIZATION IS LINE SEQUENTIAL.
           SELECT OUT-FILE ASSIGN TO OUTFILE
               ORGANIZATION IS SEQUENTIAL.
       DATA DIVISION.
       FILE SECTION.
       FD  IN-FILE.
       01  IN-REC.
           05  I-ID                PIC 9(6).
           05  I-TEXT              PIC X(12).
           05  I-NUM               PIC S9(14)V9(4)
                                   SIGN LEADING SEPARATE OCCURS 24.
           05  I-LONG              PIC S9(18)
                                   SIGN LEADING SEPARATE OCCURS 2.
      * THE OUTPUT RECORD IS THE COPYBOOK ITSELF: ITS LENGTH IS THE
      * COMPILER'S, WHICH THE TEST COMPARES WITH BULKSYNC'S.
       FD  OUT-FILE.
       COPY "alltypes.cpy".
       WORKING-STORAGE SECTION.
       01  WS-EOF                  PIC X VALUE "N".
       PROCEDURE DIVISION.
           OPEN INPUT IN-FILE OUTPUT OUT-FILE.
           PERFORM UNTIL WS-EOF = "Y"
               READ IN-FILE
                   AT END MOVE "Y" TO WS-EOF
                   NOT AT END PERFORM WRITE-ONE
               END-READ
           END-PERFORM.
           CLOSE IN-FILE OUT-FILE.
           STOP RUN.
       WRITE-ONE.
           MOVE I-ID TO A-ID.
           MOVE I-TEXT TO A-TEXT.
           MOVE I-NUM(1) TO A-ZONED.
           MOVE I-NUM(2) TO A-ZONED-L.
           MOVE I-NUM(3) TO A-SEP-T.
           MOVE I-NUM(4) TO A-SEP-L.
           MOVE I-NUM(5) TO A-UNSIGNED.
           MOVE I-NUM(6) TO A-PACKED.
           MOVE I-NUM(7) TO A-PACKED-U.
           MOVE I-NUM(8) TO A-PACKED-E.
           MOVE I-NUM(9) TO A-BIN-H.
           MOVE I-NUM(10) TO A-BIN-F.
           MOVE I-LONG(1) TO A-BIN-D.
           MOVE I-LONG(2) TO A-BIN-U.
           MOVE I-NUM(11) TO A-BIN-V.
           MOVE I-NUM(12) TO A-COMP5.
           MOVE I-NUM(13) TO A-FLOAT.
           MOVE I-NUM(14) TO A-DOUBLE.
           MOVE I-NUM(15) TO A-ED-PLUS.
           MOVE I-NUM(16) TO A-ED-ZMINUS.
           MOVE I-NUM(17) TO A-ED-POINT.
           MOVE I-NUM(18) TO A-ED-EXPLICIT.
           MOVE I-NUM(19) TO A-ED-COMMA.
           MOVE I-NUM(20) TO A-ED-STAR.
           MOVE I-NUM(21) TO A-ED-DB.
           MOVE I-NUM(22) TO A-ED-FLOAT.
           MOVE I-NUM(23) TO A-ED-BLANK.
           MOVE I-NUM(24) TO A-ED-SLASH.
           WRITE ALL-REC.
