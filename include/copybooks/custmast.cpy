000100******************************************************************
000200* CUSTMAST - CUSTOMER MASTER, FIXED 200-BYTE RECORDS (RECFM=FB)
000300******************************************************************
000400 01  CUSTOMER-RECORD.
000500     05  CUST-ID                 PIC 9(8).
000600     05  CUST-NAME               PIC X(30).
000700     05  CUST-TYPE               PIC X.
000800         88  CUST-RETAIL         VALUE 'R'.
000900         88  CUST-WHOLESALE      VALUE 'W'.
001000     05  CUST-ADDRESS.
001100         10  CUST-STREET         PIC X(30).
001200         10  CUST-CITY           PIC X(20).
001300         10  CUST-ZIP            PIC X(10).
001400         10  CUST-COUNTRY        PIC XX.
001500     05  CUST-BALANCE            PIC S9(9)V99 COMP-3.
001600     05  CUST-CREDIT-LIMIT       PIC S9(7)V99 COMP-3.
001700     05  CUST-YTD-ORDERS         PIC S9(7) COMP.
001800     05  CUST-DISCOUNT-PCT       PIC S9V999.
001900     05  CUST-OPENED             PIC 9(8).
002000     05  CUST-LAST-ORDER         PIC 9(8).
002100     05  CUST-SEGMENT-CODE       PIC S9(4) COMP-5.
002200     05  CUST-RATING             PIC S9(3) SIGN LEADING SEPARATE.
002300     05  CUST-PHONES             OCCURS 2 TIMES.
002400         10  CUST-PHONE-TYPE     PIC X.
002500         10  CUST-PHONE-NO       PIC X(15).
002600     05  CUST-STATUS             PIC X.
002700     05  FILLER                  PIC X(25).
