      * WRITES PAY.CPY RECORDS, ONE PER INPUT LINE (H, D OR T). EACH
      * RECORD IS AS LONG AS THE COMPILER SAYS ITS 01 RECORD IS, AND A
      * CARD DETAIL ENDS WITH ITS SHORT BRANCH (D-CARD REDEFINES D-BODY).
       IDENTIFICATION DIVISION.
       PROGRAM-ID. PAYW.
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
           05  I-TYPE              PIC X.
           05  I-KIND              PIC X.
           05  I-ID                PIC 9(8).
           05  I-TEXT              PIC X(22).
           05  I-AMT               PIC S9(11)V99 SIGN LEADING SEPARATE.
       FD  OUT-FILE
           RECORD VARYING IN SIZE FROM 1 TO 100 CHARACTERS
           DEPENDING ON WS-LEN.
       01  OUT-REC                 PIC X(100).
       WORKING-STORAGE SECTION.
       COPY "pay.cpy".
       01  WS-LEN                  PIC 9(4) COMP.
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
           EVALUATE I-TYPE
           WHEN "H"
               MOVE "H" TO H-TYPE
               MOVE I-ID TO H-DATE
               MOVE I-TEXT TO H-SOURCE
               MOVE LENGTH OF PAY-HEADER TO WS-LEN
               WRITE OUT-REC FROM PAY-HEADER
           WHEN "T"
               MOVE "T" TO T-TYPE
               MOVE I-ID TO T-COUNT
               MOVE I-AMT TO T-TOTAL
               MOVE LENGTH OF PAY-TRAILER TO WS-LEN
               WRITE OUT-REC FROM PAY-TRAILER
           WHEN OTHER
               MOVE "D" TO D-TYPE
               MOVE I-ID TO D-ID
               MOVE I-KIND TO D-KIND
               IF I-KIND = "C"
                   MOVE I-TEXT TO D-CARD-NO
                   MOVE I-AMT TO D-CARD-AMT
                   COMPUTE WS-LEN = LENGTH OF D-TYPE + LENGTH OF D-ID
                       + LENGTH OF D-KIND + LENGTH OF D-CARD
               ELSE
                   MOVE I-TEXT TO D-IBAN
                   MOVE I-AMT TO D-AMOUNT
                   MOVE LENGTH OF PAY-DETAIL TO WS-LEN
               END-IF
               WRITE OUT-REC FROM PAY-DETAIL
           END-EVALUATE.
